"""Native-crash stress check: the README's main command once, then its embed and
query steps many times, each in a fresh process, counting crashes.

    python benchmarks/stress.py --runs 30

Every embed goes into a fresh database, so every run compiles and calls the model
(the first call of the compiled graph is where TensorFlow's oneDNN pass crashed,
issue 9). A run "crashes" when a process dies of a signal (segfault: exit -11/139).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SEED  # noqa: E402 - first: the import path, TensorFlow quiet


def verifier(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", "--home", str(home), "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


def crashed(done: subprocess.CompletedProcess) -> bool:
    return done.returncode < 0 or done.returncode >= 128


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--photos-per-person", type=int, default=4,
                    help="photos of each person copied into the gallery (keeps runs short)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the pipeline run")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} is absent; pass --data DIR")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gallery = tmp / "gallery"
        for person in sorted(p for p in args.data.iterdir() if p.is_dir()):
            (gallery / person.name).mkdir(parents=True)
            for photo in sorted(person.iterdir())[: args.photos_per_person]:
                shutil.copy(photo, gallery / person.name / photo.name)
        home = tmp / "home"
        t = time.perf_counter()
        setup = verifier(home, "pipeline", "--data", str(gallery), "--backbone", "dlib-resnet",
                         "--epochs", str(args.epochs), "--name", "stress")
        print(f"pipeline (dlib-resnet, dense head, {args.epochs} epochs): exit {setup.returncode} "
              f"in {time.perf_counter() - t:.0f} s")
        if setup.returncode != 0:
            print(setup.stderr[-3000:])
            sys.exit(1)
        crashes = failures = 0
        t = time.perf_counter()
        for run in range(args.runs):
            db = f"sqlite:///{tmp}/run{run}.db"
            for step in (("embed", "--data", str(gallery)), ("query", str(gallery), "-k", "1")):
                done = verifier(home, "--db-url", db, *step)
                if crashed(done):
                    crashes += 1
                    print(f"run {run + 1} {step[0]}: CRASH exit {done.returncode}\n{done.stderr[-2000:]}")
                elif done.returncode != 0:
                    failures += 1
                    print(f"run {run + 1} {step[0]}: exit {done.returncode}: {done.stderr[-500:]}")
            print(f"run {run + 1}/{args.runs}: {crashes} crashes so far", flush=True)
        print(f"CRASHES {crashes} in {args.runs} runs ({2 * args.runs} processes: embed + query), "
              f"{failures} other failures, {time.perf_counter() - t:.0f} s")
        sys.exit(1 if crashes or failures else 0)


if __name__ == "__main__":
    main()
