"""Resident memory of `verifier serve` under sustained load, with glibc's default malloc
arenas and with MALLOC_ARENA_MAX=2, side by side (loopback only, bounded requests).

    python benchmarks/serve_memory.py [--rounds 6 --per-round 500]

A dlib-resnet gallery of the seed photos; 8 clients send searches of re-encoded seed
photos; the server's RSS is read after each round.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet
import serve_load as sl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=sl.SEED)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=500)
    args = ap.parse_args()
    photos = sorted(args.data.rglob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        key = sl.dlib_workspace(home, args.data)
        for label, arenas in (("default arenas", None), ("MALLOC_ARENA_MAX=2", "2")):
            saved = os.environ.get("MALLOC_ARENA_MAX")
            if arenas:
                os.environ["MALLOC_ARENA_MAX"] = arenas
            try:
                proc, base = sl.start(home)
            finally:
                if arenas:
                    os.environ.pop("MALLOC_ARENA_MAX") if saved is None else \
                        os.environ.__setitem__("MALLOC_ARENA_MAX", saved)
            try:
                make = sl.variants(photos[::8]).__next__
                rss = [sl.rss_mb(proc.pid)]
                t = time.perf_counter()
                for _ in range(args.rounds):
                    _, statuses, _ = sl.hammer(base, key, 8, args.per_round, make)
                    assert set(statuses) == {200}, statuses
                    rss.append(sl.rss_mb(proc.pid))
                print(f"{label:<20} RSS MB at start and after each {args.per_round} searches: "
                      + " ".join(f"{r:.0f}" for r in rss)
                      + f"; last round +{rss[-1] - rss[-2]:.0f} MB ({time.perf_counter() - t:.0f} s)",
                      flush=True)
            finally:
                proc.terminate()
                proc.wait(60)


if __name__ == "__main__":
    main()
