"""Scoring pairs from stored embeddings against running the network per pair, and
the time of the HTML report, on the seed set.

    python benchmarks/evaluate_speed.py --data ../shared/data/seed-faces
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from jobs.evaluate import evaluate  # noqa: E402
from jobs.models import load_model  # noqa: E402
from jobs.pipeline import run_pipeline  # noqa: E402
from jobs.report import write_report  # noqa: E402
from jobs.train import TrainOptions  # noqa: E402
from storage import gallery  # noqa: E402
from storage import models  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from verifier.images import scan_dataset  # noqa: E402
from verifier.losses import euclidean_distance_np  # noqa: E402
from verifier.pairs import make_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--sample-pairs", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(home)
        sessions = open_database(ws.database_url)
        opts = TrainOptions(data=args.data, backbone=args.backbone, weights="none", epochs=1,
                            detector="none", image_size=args.image_size, name="bench")
        run_pipeline(ws, sessions, opts, quiet=True, echo=lambda s: None)
        loaded = load_model(ws, "bench")

        # all 16,256 ordered pairs scored from the stored vectors (database read included)
        t = time.perf_counter()
        with sessions() as s:
            ids, vectors = gallery.model_vectors(s, models.get_model(s, "bench").id)
        n = len(vectors)
        a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        keep = a != b
        d = euclidean_distance_np(vectors[a[keep]], vectors[b[keep]])
        stored = time.perf_counter() - t

        # the tutorial's way: both photos through the network for every pair
        ps = make_pairs([str(i) for i in range(n)], "seed", 0).train
        paths = [p.path for p in scan_dataset(args.data).photos]
        t = time.perf_counter()
        for i in range(args.sample_pairs):
            x = np.stack([loaded.load(paths[ps.first[i]]),
                          loaded.load(paths[ps.second[i]])])
            loaded.embed(x[:1])
            loaded.embed(x[1:])
        per_pair = (time.perf_counter() - t) / args.sample_pairs

        t = time.perf_counter()
        evaluate(ws, sessions, model="bench", quiet=True)
        ev_time = time.perf_counter() - t
        t = time.perf_counter()
        write_report(sessions, Path(home) / "r.html", "html")
        html_time = time.perf_counter() - t
    total_pairs = len(d)
    print(f"{args.backbone} {args.image_size}px, {n} photos, {total_pairs} ordered pairs")
    print(f"stored embeddings: {stored:.3f} s for all pairs (target < 1 s)")
    print(f"network per pair:  {per_pair:.3f} s per pair -> {per_pair * total_pairs / 60:.1f} min "
          f"for all pairs (extrapolated from {args.sample_pairs})")
    print(f"RATIO per-pair / stored = {per_pair * total_pairs / stored:.0f}x")
    print(f"verifier evaluate (calibrate + score + store the test split): {ev_time:.2f} s")
    print(f"HTML report: {html_time:.2f} s (target < 10 s)")


if __name__ == "__main__":
    main()
