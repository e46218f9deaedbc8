"""Where `verifier embed`'s parallelism stands on this machine, side by side in one run.

    python benchmarks/embed_parallelism.py [--rounds 2] [--copies 2]

1. Preparing the seed photos (decode, MTCNN, align; no face cache, so every photo is
   detected): on 1 thread, on 2 threads (what the local engine does) and on 2
   processes. If the GIL held the preparation back, processes would be faster than
   threads.
2. `embed_gallery` end to end on re-encoded copies of the seed photos (fresh
   workspace and face cache each run), with the branch's ONNX Runtime session on 1
   intra-op thread against every core (the budget issue 21 set for batch
   embedding), while the preparation threads run beside it; and on every core with
   each batch in one run instead of runs of `verifier.onnx_branch.RUN_SIZE` inputs
   (flip averaging makes a batch of 32 photos 64 inputs).

`--detector` (default: the default detector) finds the faces in both.

Rounds alternate between the variants (the machine's speed drifts); medians.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier.defaults import DEFAULT_DETECTOR, DETECTORS  # noqa: E402

_preparer = None


def _start_worker(detector: str) -> None:
    global _preparer
    from verifier.preparation import PhotoPreparer

    _preparer = PhotoPreparer(150, detector)  # no cache: every photo is detected


def _prepare(data: bytes) -> tuple:
    return _preparer.prepare_bytes(data, remember=False).pixels.shape


def preparation(datas: list[bytes], rounds: int, detector: str) -> None:
    _start_worker(detector)
    pools = {"1 thread": ThreadPoolExecutor(1), "2 threads": ThreadPoolExecutor(2),
             "2 processes": ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_start_worker, initargs=(detector,))}
    speeds: dict[str, list[float]] = {name: [] for name in pools}
    try:
        for pool in pools.values():
            list(pool.map(_prepare, datas[:4]))  # started and warm
        for _ in range(rounds):
            for name, pool in pools.items():
                t = time.perf_counter()
                list(pool.map(_prepare, datas, chunksize=4))
                speeds[name].append(len(datas) / (time.perf_counter() - t))
    finally:
        for pool in pools.values():
            pool.shutdown()
    print("preparing the seed photos (decode, detect, align), photos/s: "
          + ", ".join(f"{name} {np.median(v):.1f}" for name, v in speeds.items()), flush=True)


def branch_threads(base: Path, data: Path, rounds: int, detector: str) -> None:
    from jobs.embed import embed_gallery
    from jobs.models import load_model
    from jobs.train import TrainOptions, train
    from storage.database import open_database
    from storage.workspace import Workspace
    from verifier import onnx_branch

    train(Workspace.open(base / "trained"), TrainOptions(
        data=SEED, backbone="dlib-resnet", head="none", fine_tune=0.0, detector=detector, name="m"),
        quiet=True, echo=lambda s: None)
    cores = os.cpu_count() or 1
    runs = onnx_branch.RUN_SIZE
    variants = {f"{cores} intra-op threads": (cores, runs), "1 intra-op thread": (1, runs),
                f"{cores} threads, a batch in one run": (cores, 1 << 30)}
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for r in range(rounds):
            for k, (name, (threads, run_size)) in enumerate(variants.items()):
                onnx_branch.RUN_SIZE = run_size
                home = base / f"home-{r}-{k}"
                shutil.copytree(base / "trained" / "models", home / "models")
                ws = Workspace.open(home)
                loaded = load_model(ws, "m", threads=threads)
                loaded.embed(np.zeros((1, 150, 150, 3), np.float32))  # warm, as a worker
                t = time.perf_counter()
                summary = embed_gallery(ws, open_database(ws.database_url), data, loaded=loaded, quiet=True)
                speeds[name].append(summary.added / (time.perf_counter() - t))
    finally:
        onnx_branch.RUN_SIZE = runs
    base_speed = np.median(speeds[f"{cores} intra-op threads"])
    print(f"verifier embed of {summary.added} photos ({detector}, flip averaging), photos/s: branch on "
          + ", ".join(f"{name} {np.median(v):.1f} ({np.median(v) / base_speed:.2f}x)"
                      for name, v in speeds.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=[d for d in DETECTORS if d != "none"])
    args = ap.parse_args()
    from benchmarks.embed_engines import seed_copies

    preparation([p.read_bytes() for p in sorted(SEED.rglob("*.png"))], args.rounds, args.detector)
    with tempfile.TemporaryDirectory() as tmp:
        branch_threads(Path(tmp), seed_copies(SEED, Path(tmp) / "copies", args.copies), args.rounds,
                       args.detector)


if __name__ == "__main__":
    main()
