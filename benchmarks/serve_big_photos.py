"""Peak memory of `verifier serve` while 8 clients each upload a 50-megapixel 16-bit
PNG (a few hundred kB on the wire), against the idle server (loopback only, bounded).

    python benchmarks/serve_big_photos.py [--rounds 3]

A dlib-resnet gallery of the seed photos with MTCNN faces; the server runs with
``--max-pixels 60000000`` so that the photos are decoded (its default, 25 megapixels,
refuses them from their header: also measured, as the second line). The server's RSS
is sampled every 20 ms from /proc while the uploads run; no answer may be a 500.
"""
from __future__ import annotations

import argparse
import io
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet
import numpy as np  # noqa: E402
import serve_load as sl  # noqa: E402
from PIL import Image  # noqa: E402


def big_png(seed: int, width: int = 8660, height: int = 5774) -> bytes:
    """A 50-megapixel 16-bit grayscale PNG with a seed photo pasted in the middle."""
    rng = np.random.default_rng(seed)
    canvas = np.full((height, width), 20_000, np.uint16)
    canvas[::97, :] = rng.integers(0, 65535, width, dtype=np.uint16)  # some texture
    photo = sorted(sl.SEED.rglob("*.png"))[seed % 128]
    face = np.asarray(Image.open(photo).convert("L").resize((1200, 1200)), np.uint16) * 257
    y, x = height // 2 - 600, width // 2 - 600
    canvas[y:y + 1200, x:x + 1200] = face
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def measure(home: Path, key: str, uploads: list[bytes], *extra: str) -> tuple[float, float, dict]:
    proc, base = sl.start(home, *extra)
    try:
        import httpx

        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300) as c:
            warm = sorted(sl.SEED.rglob("*.png"))[0].read_bytes()  # the model's first run
            assert c.post("/v1/search", files={"photo": ("w.png", warm)}).status_code == 200
        time.sleep(1)
        idle = sl.rss_mb(proc.pid)
        peak, codes, stop = [idle], {}, threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], sl.rss_mb(proc.pid))
                time.sleep(0.02)

        def client(data: bytes):
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                              timeout=300) as c:
                r = c.post("/v1/search", files={"photo": ("big.png", data)})
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        sampler = threading.Thread(target=sample)
        sampler.start()
        threads = [threading.Thread(target=client, args=(d,)) for d in uploads]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        stop.set()
        sampler.join()
        return idle, peak[0], codes
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    uploads = [big_png(seed) for seed in range(args.clients)]
    print(f"{len(uploads)} uploads of 8660x5774 16-bit PNG, {np.mean([len(u) for u in uploads]) / 1e3:.0f} kB each")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        key = sl.dlib_workspace(home, sl.SEED)
        for label, extra in (("--max-pixels 60000000 (decoded)", ("--max-pixels", "60000000")),
                             ("default --max-pixels (refused from the header)", ())):
            idle, peak, codes = measure(home, key, uploads, "--max-upload", str(50 * 2 ** 20), *extra)
            print(f"{label}: idle {idle:.0f} MB, peak {peak:.0f} MB while {len(uploads)} clients "
                  f"upload (+{peak - idle:.0f} MB); answers {codes}")


if __name__ == "__main__":
    main()
