"""Load on `verifier serve` (loopback only, bounded in requests and time), side by side
with the work a request cannot avoid.

    python benchmarks/serve_load.py

A dlib-resnet model (MTCNN faces, nothing to train) is built on the seed photos and
the gallery embedded; a real server process is started on 127.0.0.1 (random port).
Probes are seed photos re-encoded (a new JPEG quality each time), so every request
detects its face: nothing is answered from a cache.

1. Warm search, one client: p50/p99 against detection + alignment + one forward of
   the same bytes in this process; and against one `verifier query` process.
2. 8 concurrent clients: throughput against one client, errors, server memory.
3. Overload: 64 clients against --queue 16: status codes, memory.
4. Enrollment, one photo per request: p50, and how often the index file is written.
5. Growth: 1,000 vectors added to a 1,000,000-vector index, against rebuilding it.
"""
from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from common import ROOT, SEED  # noqa: E402 - first: the import path, TensorFlow quiet

sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def verifier(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", "--home", str(home), "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, check=True, **kw)


def dlib_workspace(home: Path, data: Path, scope: str = "read", model: str = "m",
                   detector: str | None = None) -> str:
    """A workspace with a dlib-resnet model (MTCNN faces, the default detector unless
    ``detector``; nothing to train) and the photos of ``data`` embedded; returns a new
    API key of ``scope``."""
    verifier(home, "train", "--data", str(data), "--backbone", "dlib-resnet", "--head", "none",
             "--fine-tune", "0", "--name", model, *(("--detector", detector) if detector else ()))
    verifier(home, "embed", "--data", str(data))
    return verifier(home, "keys", "create", f"bench-{scope}", "--scope", scope).stdout.strip()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def variants(photos: list[Path]):
    """Endless distinct JPEG encodings of the seed photos (new bytes, same faces)."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in photos]
    n = 0
    while True:
        buf = io.BytesIO()
        images[n % len(images)].save(buf, "JPEG", quality=60 + (n // len(images)) % 40,
                                     comment=str(n).encode())
        yield buf.getvalue()
        n += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "--home", str(home), "-q", "serve",
                             "--port", str(port), *extra], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("the server did not start")


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def hammer(base: str, key: str, clients: int, total: int, make, timeout: float = 30.0):
    """``total`` searches from ``clients`` threads; returns (seconds, statuses, latencies)."""
    import httpx

    lock = threading.Lock()
    statuses, latencies, left = Counter(), [], [total]

    def client():
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                          timeout=timeout) as c:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                    photo = make()
                t = time.perf_counter()
                try:
                    status = c.post("/v1/search", files={"photo": ("p.jpg", photo)}).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                    latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, statuses, latencies


def growth() -> None:
    import faiss

    from storage.live_index import LiveIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1_000_000, 128)).astype(np.float32)
    ids = np.arange(1, 1_000_001)
    for factory in ("Flat", "IVF1024,Flat"):
        t = time.perf_counter()
        index = LiveIndex.build(vectors, ids, "m", factory)
        build = time.perf_counter() - t
        extra = rng.normal(size=(1000, 128)).astype(np.float32)
        t = time.perf_counter()
        for i in range(1000):  # one enrollment at a time
            index.add(np.array([2_000_000 + i]), extra[i:i + 1])
        add = time.perf_counter() - t
        print(f"growth, {factory}: 1,000 single adds to 1,000,000 vectors {add:.2f} s; "
              f"building the index {build:.1f} s (RATIO rebuild / adds = {build / add:.0f}x)")
        del index
    del faiss


def in_process(home: Path, photos: list) -> tuple[list, list[float], float, float, object]:
    """The unavoidable part, in this process, on the same kind of bytes: detection
    and forward per probe, and one forward per photo alone against in a batch of 8."""
    from jobs.models import load_model
    from storage.workspace import Workspace
    from verifier.preparation import PhotoPreparer

    loaded = load_model(Workspace.open(home), "bench")
    config = loaded.config
    bare_prep = PhotoPreparer(config.image_size, config.detector, config.face_padding)
    make = variants(photos[::8]).__next__
    probes = [make() for _ in range(64)]
    loaded.embed(bare_prep.prepare_bytes(probes[0]).pixels[None])
    bare = []
    for p in probes:
        t = time.perf_counter()
        loaded.embed(bare_prep.prepare_bytes(p).pixels[None])
        bare.append(time.perf_counter() - t)
    chips = np.stack([bare_prep.prepare_bytes(p).pixels for p in probes[:8]])
    t = time.perf_counter()
    for _ in range(5):
        for c in chips:
            loaded.embed(c[None])
    one_by_one = (time.perf_counter() - t) / 40
    t = time.perf_counter()
    for _ in range(5):
        loaded.embed(chips)
    batched = (time.perf_counter() - t) / 40
    return probes, bare, one_by_one, batched, make


def one_client(base: str, key: str, home: Path, tmp: Path, probes: list, bare: list[float],
               one_by_one: float, batched: float, make) -> None:
    """1. Searches from one client against the same work done in process, and one CLI query."""
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        for p in probes[:4]:
            c.post("/v1/search", files={"photo": ("w.jpg", p)})
        served = []
        for p in probes:
            t = time.perf_counter()
            assert c.post("/v1/search", files={"photo": ("p.jpg", p)}).status_code == 200
            served.append(time.perf_counter() - t)
    print(f"1. search, one client, {len(probes)} requests: p50 {pct(served, 50):.0f} ms, "
          f"p99 {pct(served, 99):.0f} ms; detection + forward alone: p50 "
          f"{pct(bare, 50):.0f} ms -> RATIO {np.median(served) / np.median(bare):.3f} "
          f"(target <= 1.15)")
    print(f"   network share: one forward {one_by_one * 1000:.1f} ms per photo alone, "
          f"{batched * 1000:.1f} ms per photo in a batch of 8")
    one = tmp / "one.jpg"
    one.write_bytes(make())
    t = time.perf_counter()
    verifier(home, "query", str(one), "-k", "5")
    cli = time.perf_counter() - t
    print(f"   one `verifier query` process: {cli * 1000:.0f} ms -> RATIO CLI / served p50 = "
          f"{cli / np.median(served):.0f}x")


def many_clients(base: str, key: str, proc, requests: int, make) -> None:
    """2. Eight clients against one; 3. an overload of 64 clients on a queue of 16."""
    start_rss = rss_mb(proc.pid)
    seconds1, st1, _ = hammer(base, key, 1, 200, make)
    seconds8, st8, lat8 = hammer(base, key, 8, requests, make)
    end_rss = rss_mb(proc.pid)
    print(f"2. 8 clients, {requests} requests: {requests / seconds8:.1f} req/s vs "
          f"1 client {200 / seconds1:.1f} req/s -> RATIO {(requests / seconds8) / (200 / seconds1):.2f} "
          f"(target >= 1.3); statuses {dict(st8)}; p50 {pct(lat8, 50):.0f} ms, "
          f"p99 {pct(lat8, 99):.0f} ms; server RSS {start_rss:.0f} -> {end_rss:.0f} MB")
    seconds, st, lat = hammer(base, key, 64, 640, make, timeout=60)
    print(f"3. overload, 64 clients, queue 16: statuses {dict(st)}, "
          f"p99 {pct(lat, 99):.0f} ms, server RSS {rss_mb(proc.pid):.0f} MB")


def enrollments(base: str, key: str, count: int, make) -> None:
    """4. Enrollments one per request, and how often the index file was written."""
    import httpx

    enroll_lat = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        for n in range(count):
            t = time.perf_counter()
            r = c.post(f"/v1/identities/person{n % 50}/photos", files={"photos": ("e.jpg", make())})
            enroll_lat.append(time.perf_counter() - t)
            assert r.status_code in (200, 201), r.text
        metrics = c.get("/metrics").text
    snapshots = next(line.split()[-1] for line in metrics.splitlines()
                     if line.startswith("verifier_index_snapshots "))
    print(f"4. {count} enrollments, one per request: p50 {pct(enroll_lat, 50):.0f} ms, "
          f"p99 {pct(enroll_lat, 99):.0f} ms, {sum(enroll_lat):.0f} s; index file written "
          f"{snapshots} times (snapshot every 10 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--requests", type=int, default=2000, help="requests of the 8-client run")
    ap.add_argument("--enroll", type=int, default=1000)
    ap.add_argument("--skip-growth", action="store_true")
    args = ap.parse_args()
    from verifier.images import scan_dataset

    photos = [p.path for p in scan_dataset(args.data).photos]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t = time.perf_counter()
        key = dlib_workspace(home, args.data, "write", "bench")
        print(f"setup (train, embed 128 photos): {time.perf_counter() - t:.0f} s")
        probes, bare, one_by_one, batched, make = in_process(home, photos)
        proc, base = start(home, "--snapshot-interval", "10")
        try:
            one_client(base, key, home, Path(tmp), probes, bare, one_by_one, batched, make)
            many_clients(base, key, proc, args.requests, make)
            enrollments(base, key, args.enroll, make)
        finally:
            proc.terminate()
            proc.wait(60)
    if not args.skip_growth:
        growth()


if __name__ == "__main__":
    main()
