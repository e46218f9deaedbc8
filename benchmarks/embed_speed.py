"""Gallery embedding against bare ``predict`` of the same branch, side by side.

    python benchmarks/embed_speed.py --data ../shared/data/seed-faces

1. Throughput of ``verifier embed`` (hashing, decoding, database, index) against
   ``predict_on_batch`` of the same branch on the same, already decoded photos.
2. A second run on the unchanged folder: model calls and seconds.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from jobs.embed import embed_gallery  # noqa: E402
from jobs.models import load_model  # noqa: E402
from jobs.train import TrainOptions, train  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from verifier.images import scan_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--backbone", default="vgg19")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(home)
        train(ws, TrainOptions(data=args.data, backbone=args.backbone, epochs=1,
                               weights="default" if args.backbone == "dlib-resnet" else "none",
                               detector="none", name="bench"), quiet=True, echo=lambda s: None)
        loaded = load_model(ws, "bench")
        paths = [p.path for p in scan_dataset(args.data).photos]
        pixels = np.stack([loaded.load(p) for p in paths])
        loaded.embed(pixels[: args.batch_size])  # warm up both paths alike
        loaded.embed(pixels[: args.batch_size // 4])
        import faiss  # noqa: F401  (imported once per process either way)

        bares, pipelines = [], []
        for attempt in range(args.repeat):  # alternate, keep the best of each
            t = time.perf_counter()
            for i in range(0, len(pixels), args.batch_size):
                loaded.embed(pixels[i:i + args.batch_size])
            bares.append(time.perf_counter() - t)
            sessions = open_database(f"sqlite:///{home}/bench{attempt}.db")
            t = time.perf_counter()
            first = embed_gallery(ws, sessions, args.data, loaded=loaded, batch_size=args.batch_size,
                                  quiet=True)
            pipelines.append(time.perf_counter() - t)
        bare, pipeline = min(bares), min(pipelines)
        calls = loaded.calls
        t = time.perf_counter()
        again = embed_gallery(ws, sessions, args.data, loaded=loaded, batch_size=args.batch_size, quiet=True)
        rerun = time.perf_counter() - t
    n = len(paths)
    print(f"{args.backbone}, {n} photos, batch {args.batch_size}")
    print(f"bare predict:   {n / bare:7.1f} photos/s ({bare:.2f} s, decoded photos in memory)")
    print(f"verifier embed: {n / pipeline:7.1f} photos/s ({pipeline:.2f} s: hash, decode, predict, "
          f"database, index), {first.added} added")
    print(f"RATIO embed / bare throughput = {bare / pipeline:.3f} (target >= 0.90)")
    print(f"rerun on the unchanged folder: {again.model_calls} model calls "
          f"(calls before: {calls}), {rerun:.2f} s (target: 0 calls, <= 2 s)")


if __name__ == "__main__":
    main()
