"""What the one write path and its change log cost, and how far a second server lags.

    python benchmarks/gallery_writes.py                   # both parts, SQLite and PostgreSQL
    python benchmarks/gallery_writes.py --baseline fc4e755 --enrollments 200

1. Enrollment latency (``Verifier.enroll``, one photo per call, in process) of this
   tree and of ``--baseline`` (a git revision, checked out into a temporary worktree
   and run in a child process with the same inputs), side by side: the change log
   must not cost more than 10%. The ``tiny`` model on 32 px synthetic photos makes
   the database the largest share of an enrollment (the worst case for the ratio);
   with a face model the share is far smaller.
2. Catch-up lag: two ``verifier serve`` processes on one database; 8 writer threads
   enrol photos through both; for each answered enrollment, the time until the
   *other* server finds the photo (searched every 20 ms): p50 and p99 seconds.

PostgreSQL is used where it answers at 127.0.0.1:5432 (database ``test``; its
gallery tables are dropped first).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet

ROOT = Path(os.environ.get("VERIFIER_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def photo(identity: int, seed: int) -> bytes:
    import io

    from PIL import Image

    from verifier.synthetic import pattern_image

    buf = io.BytesIO()
    Image.fromarray(pattern_image(identity, np.random.default_rng(seed), 32)).save(buf, "PNG")
    return buf.getvalue()


def postgres_ready() -> bool:
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES)
        with engine.begin() as conn:  # every table of the database, whatever release made it
            tables = sqlalchemy.inspect(conn).get_table_names()
            if tables:
                conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(f'"{t}"' for t in tables)
                                     + " CASCADE")
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server: SQLite only
        return False


def tiny_workspace(home: Path) -> Path:
    """A workspace with the ``tiny`` model and a 12-photo gallery folder."""
    from jobs.train import TrainOptions, train
    from storage.workspace import Workspace
    from verifier.synthetic import write_identity_set

    data = write_identity_set(home / "faces", identities=4, per_identity=3, size=32)
    train(Workspace.open(home / "home"), TrainOptions(
        data=data, backbone="tiny", weights="none", image_size=32, detector="none", epochs=1,
        name="tiny", embedding_dim=8), quiet=True, echo=lambda s: None)
    return data


def tiny_gallery(tmp: Path, db: str):
    """``(database URL, sessions, gallery folder)``: :func:`tiny_workspace` under
    ``tmp`` with its folder embedded and a threshold of 0.5, on ``db`` ("sqlite" or
    "postgresql"; exits when PostgreSQL does not answer)."""
    from jobs.embed import embed_gallery
    from storage import models
    from storage.database import open_database
    from storage.workspace import Workspace

    data = tiny_workspace(tmp)
    if db == "postgresql":
        if not postgres_ready():
            sys.exit(f"PostgreSQL does not answer at {POSTGRES}")
        url = POSTGRES
    else:
        url = f"sqlite:///{tmp}/home/verifier.db"
    sessions = open_database(url)
    embed_gallery(Workspace.open(tmp / "home"), sessions, data, model="tiny", quiet=True)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = 0.5
    return url, sessions, data


def enroll_latency(home: Path, data: Path, db_url: str, n: int) -> list[float]:
    """Seconds per ``enroll`` call, ``n`` new photos, after a warm-up."""
    from jobs.embed import embed_gallery
    from jobs.live import Verifier
    from storage.database import open_database
    from storage.workspace import Workspace

    ws = Workspace.open(home / "home")
    sessions = open_database(db_url)
    embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    v = Verifier.open(ws, sessions, "tiny")
    v.enroll("warm-up", photo(0, 10 ** 6))
    times = []
    for i in range(n):
        data_i = photo(i % 5, 1000 + i)
        t = time.perf_counter()
        v.enroll(f"person{i % 20}", data_i)
        times.append(time.perf_counter() - t)
    v.close()
    sessions.kw["bind"].dispose()
    return times


def child(args) -> None:
    """Run part 1 in this tree and print the timings as JSON (the baseline's side)."""
    home = Path(args.home)
    out = {}
    for name, url in json.loads(args.urls).items():
        if url.startswith("sqlite"):
            url = f"sqlite:///{home}/{name}-{os.getpid()}.db"
        else:
            postgres_ready()
        out[name] = enroll_latency(home, home / "faces", url, args.enrollments)
    print(json.dumps(out))


def run_tree(tree: Path, home: Path, urls: dict, n: int) -> dict:
    env = {**os.environ, "VERIFIER_TREE": str(tree), "PYTHONPATH": str(tree)}
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--home", str(home),
                        "--urls", json.dumps(urls), "--enrollments", str(n)],
                       cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def part_enroll(args, urls: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny_workspace(tmp)
        base = tmp / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                        args.baseline], check=True)
        try:
            rounds = {"now": [], "baseline": []}
            for _ in range(args.rounds):  # alternate, so that a slow spell hits both
                for side, tree in (("now", ROOT), ("baseline", base)):
                    home = tmp / f"{side}-home"
                    shutil.rmtree(home, ignore_errors=True)
                    shutil.copytree(tmp / "home", home / "home")
                    shutil.copytree(tmp / "faces", home / "faces")
                    rounds[side].append(run_tree(tree, home, urls, args.enrollments))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False)
    for db in urls:
        now = [t for r in rounds["now"] for t in r[db]]
        old = [t for r in rounds["baseline"] for t in r[db]]
        p50n, p50o = statistics.median(now) * 1e3, statistics.median(old) * 1e3
        print(f"enroll, {db}: p50 {p50n:.1f} ms now vs {p50o:.1f} ms at {args.baseline} "
              f"(RATIO {p50n / p50o:.2f}x); p90 {np.percentile(now, 90) * 1e3:.1f} vs "
              f"{np.percentile(old, 90) * 1e3:.1f} ms; {len(now)} enrollments each")


def part_lag(args, urls: dict) -> None:
    from tests.servers import Server

    for db, url in urls.items():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data = tiny_workspace(tmp)
            if url.startswith("sqlite"):
                url = f"sqlite:///{tmp}/home/verifier.db"
            else:
                postgres_ready()
            from jobs.embed import embed_gallery
            from storage.database import open_database
            from storage.workspace import Workspace

            sessions = open_database(url)
            embed_gallery(Workspace.open(tmp / "home"), sessions, data, model="tiny", quiet=True)
            sessions.kw["bind"].dispose()
            servers = [Server(tmp / "home", url, refresh=args.refresh) for _ in range(2)]
            for s in servers:
                s.start()
            lags: list[float] = []
            lock = threading.Lock()

            def writer(w: int) -> None:
                for i in range(args.lag_enrollments // 8):
                    n = w * 1000 + i
                    data_n = photo(n % 5, 50_000 + n)
                    here, there = servers[n % 2], servers[(n + 1) % 2]
                    assert here.enroll(f"w{n}", [data_n]) == 201
                    t = time.perf_counter()
                    while time.perf_counter() - t < 30:
                        top = there.search(data_n, k=1)
                        if top and top[0]["identity"] == f"w{n}":
                            break
                        time.sleep(0.02)
                    with lock:
                        lags.append(time.perf_counter() - t)

            try:
                threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(600)
            finally:
                for s in servers:
                    s.kill()
            print(f"catch-up lag, {db}, 8 writers through 2 servers, refresh every {args.refresh} s: "
                  f"p50 {np.percentile(lags, 50):.2f} s, p99 {np.percentile(lags, 99):.2f} s, "
                  f"max {max(lags):.2f} s over {len(lags)} enrollments")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="fc4e755", help="git revision to compare enrollment with")
    ap.add_argument("--enrollments", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lag-enrollments", type=int, default=80)
    from jobs.api.settings import DEFAULT_REFRESH_INTERVAL

    ap.add_argument("--refresh", type=float, default=DEFAULT_REFRESH_INTERVAL,
                    help="servers' --refresh-interval [default: the service's]")
    ap.add_argument("--part", choices=("enroll", "lag", "both"), default="both")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--urls", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    urls = {"sqlite": "sqlite://"}
    if postgres_ready():
        urls["postgresql"] = POSTGRES
    if args.part in ("enroll", "both"):
        part_enroll(args, urls)
    if args.part in ("lag", "both"):
        part_lag(args, urls)


if __name__ == "__main__":
    main()
