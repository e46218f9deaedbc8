"""The races of issue 36 between two real servers on one database, many rounds.

    python benchmarks/gallery_races.py --rounds 60
    python benchmarks/gallery_races.py --rounds 60 --db postgresql

Each round runs two races through two `verifier serve` processes at the same moment:
server A renames (or merges) a person while server B enrolls a new photo of that
person; server A removes an enrolled photo while server B enrolls the same bytes
again. After each round both servers are caught up and then asked: the new photo's
name must be the one the database gives it (wrong answers), every gallery photo must
have its file (lost files), and no answer may be a 5xx. Prints the counts per race.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gallery_writes import POSTGRES, photo, postgres_ready, tiny_workspace  # noqa: E402


def at_once(*calls) -> list[int]:
    """Run ``calls`` together; their HTTP statuses."""
    codes: list[int] = []
    threads = [threading.Thread(target=lambda c=c: codes.append(c().status_code)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from sqlalchemy import select

    from jobs.embed import embed_gallery
    from storage import gallery
    from storage.database import open_database
    from storage.schema import Identity, Image, ImageStatus
    from storage.workspace import Workspace
    from tests.servers import Server

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tiny_workspace(tmp)
        if args.db == "postgresql":
            if not postgres_ready():
                sys.exit(f"PostgreSQL does not answer at {POSTGRES}")
            url = POSTGRES
        else:
            url = f"sqlite:///{tmp}/home/verifier.db"
        ws = Workspace.open(tmp / "home")
        sessions = open_database(url)
        embed_gallery(ws, sessions, data, model="tiny", quiet=True)
        with sessions.begin() as s:
            gallery.get_model(s, "tiny").threshold = 0.5
        a, b = Server(tmp / "home", url, refresh=0.2), Server(tmp / "home", url, refresh=0.2)
        a.start()
        b.start()
        counts = {"rename": {"wrong": 0, "5xx": 0}, "remove": {"lost files": 0, "5xx": 0}}
        t0 = time.perf_counter()
        try:
            for n in range(args.rounds):
                person, fresh = f"r{n}", photo(n % 5, 10_000 + n)
                assert a.enroll(person, [photo(n % 5, 20_000 + n)]) == 201
                codes = at_once(
                    lambda: a.client.patch(f"/v1/identities/{person}",
                                           json={"name": f"s{n}" if n % 2 else "r_merged", "merge": True}),
                    lambda: b.client.post(f"/v1/identities/{person}/photos",
                                          files=[("photos", ("p.png", fresh))]))
                counts["rename"]["5xx"] += sum(c >= 500 for c in codes)
                for server in (a, b):
                    server.wait_caught_up()
                with sessions() as s:
                    truth = s.scalar(select(Identity.name).join(Image).where(
                        Image.sha256 == __import__("hashlib").sha256(fresh).hexdigest()))
                for server in (a, b):
                    top = server.search(fresh, k=1)[0]
                    counts["rename"]["wrong"] += top["distance"] < 1e-4 and top["identity"] != truth

                again = photo((n + 1) % 5, 30_000 + n)
                r = a.client.post("/v1/identities/keeper/photos", files=[("photos", ("k.png", again))])
                photo_id = r.json()["photos"][0]["photo_id"]
                codes = at_once(lambda: a.client.delete(f"/v1/photos/{photo_id}"),
                                lambda: b.client.post("/v1/identities/keeper/photos",
                                                      files=[("photos", ("k.png", again))]))
                counts["remove"]["5xx"] += sum(c >= 500 for c in codes)
                with sessions() as s:
                    paths = s.scalars(select(Image.path).where(Image.status == ImageStatus.OK)).all()
                counts["remove"]["lost files"] += sum(ws.is_enrolled(p) and not Path(p).is_file()
                                                      for p in paths)
        finally:
            a.kill()
            b.kill()
            sessions.kw["bind"].dispose()
        print(f"{args.db}: {args.rounds} rounds in {time.perf_counter() - t0:.0f} s; "
              f"rename while enrolling: {counts['rename']['wrong']} wrong answers, "
              f"{counts['rename']['5xx']} 5xx; remove while re-enrolling: "
              f"{counts['remove']['lost files']} lost files, {counts['remove']['5xx']} 5xx")


if __name__ == "__main__":
    main()
