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
import tempfile
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet

from benchmarks.gallery_writes import photo, tiny_gallery  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from tests.races import race_rounds

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url, sessions, _ = tiny_gallery(tmp, args.db)
        t0 = time.perf_counter()
        counts = race_rounds(tmp / "home", url, sessions, args.rounds, photo)
        sessions.kw["bind"].dispose()
        print(f"{args.db}: {counts.describe()}, in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
