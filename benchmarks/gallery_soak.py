"""The randomized crash test of the gallery, run longer than CI runs it.

    python benchmarks/gallery_soak.py --steps 1000 --seed 7
    python benchmarks/gallery_soak.py --steps 1000 --db postgresql

Seeded random sequences of enrollments (single, several photos, concurrent bursts of
the same photo under four names), removals of photos and people, renames and merges,
`embed` of a folder that changes, and SIGKILL + restart of real `verifier serve`
processes; two servers on one database. After every step both servers' answers to
the probe photos must equal brute force over the vectors stored in the database at
that moment (the loop of ``tests/jobs/test_gallery_model.py``). Prints the steps,
kills, server processes started and the answers seen; stops at the first
disagreement with the step that caused it.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet

from benchmarks.gallery_writes import tiny_gallery  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes of in-process embeds
    from tests.jobs.test_gallery_model import run_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url, sessions, data = tiny_gallery(tmp, args.db)
        sessions.kw["bind"].dispose()
        t = time.perf_counter()
        world = run_model(tmp / "home", url, data, seed=args.seed, steps=args.steps)
        started = sum(1 for _ in world.servers) + world.kills
        print(f"{args.db}: {args.steps} steps (seed {args.seed}) in {time.perf_counter() - t:.0f} s, "
              f"{world.kills} SIGKILLs, {started} server processes, answers {world.statuses}; "
              "every step's answers equal brute force over the database")


if __name__ == "__main__":
    main()
