"""Training speed and quality of the fast trainer against the tutorial's per-pair
pipeline, measured side by side in one run and printed as ratios.

    python benchmarks/train_speed.py --data ../shared/data/seed-faces

1. The tutorial's configuration (VGG19, last 10% trainable, input 244, 20 epochs,
   seed protocol): the fast trainer end to end (feature caching included) against
   the per-pair Keras pipeline, timed for ``--per-pair-steps`` steps of 8 pairs and
   extrapolated to 20 epochs.
2. The whole backbone frozen (``--fine-tune 0``): training time beyond one
   backbone pass over the photos.
3. Quality: the ``tiny`` backbone on a synthetic identity set, validation ROC AUC
   of the fast trainer and of a plain per-pair ``Model.fit`` of the same network.
4. The README's main command (``--backbone dlib-resnet``, the default detector): training
   with today's defaults (identity adapter, degraded copies, hard negatives,
   open-set splits, selection and calibration) against the defaults before them
   (a new Dense head on the last 10% of the layers, the seed protocol), same photos.

Weights default to ``none`` (no download here); the compute is the same as with
ImageNet weights.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from benchmarks.per_pair import PerPairPipeline, fit_per_pair  # noqa: E402
from jobs.train import TrainOptions, train  # noqa: E402
from storage.workspace import Workspace  # noqa: E402


def fast_run(data: Path, **kw) -> dict:
    with tempfile.TemporaryDirectory() as home:
        kw.setdefault("detector", "none")  # the tutorial fed whole photos
        result = train(Workspace.open(home), TrainOptions(data=data, **kw), quiet=True,
                       echo=lambda s: None)
    return {"seconds": result.seconds, "history": result.history}


def tutorial(args) -> None:
    """The tutorial configuration: the per-pair pipeline extrapolated against the fast trainer."""
    print("== 1. tutorial configuration: VGG19, fine-tune 0.10, 244 px, seed protocol ==")
    pipe = PerPairPipeline(args.data, weights=args.weights, image_size=244)
    step_s = pipe.time_steps(args.per_pair_steps)
    steps = math.ceil(pipe.train_pairs / 8) * args.epochs
    per_pair_total = step_s * steps
    print(f"per-pair pipeline: {step_s:.2f} s per 8-pair step, {pipe.train_pairs} training "
          f"pairs -> {steps} steps -> {per_pair_total / 3600:.1f} h for {args.epochs} epochs "
          "(extrapolated)")
    del pipe
    fast = fast_run(args.data, backbone="vgg19", weights=args.weights, fine_tune=0.10,
                    image_size=244, epochs=args.epochs, batch_size=args.batch_size,
                    protocol="seed")
    s = fast["seconds"]
    print(f"fast trainer: {s['total']:.0f} s total ({s['features']:.0f} s feature caching, "
          f"{s['train']:.0f} s training), {args.epochs} epochs")
    print(f"RATIO per-pair / fast = {per_pair_total / s['total']:.0f}x   "
          f"(target >= 100x; fast total {s['total'] / 60:.1f} min, target <= 10 min)")


def frozen(args) -> None:
    """The whole backbone frozen: what training costs beyond one backbone pass."""
    print("\n== 2. whole backbone frozen (--fine-tune 0), VGG19 244 px ==")
    fast = fast_run(args.data, backbone="vgg19", weights=args.weights, fine_tune=0.0,
                    image_size=244, epochs=args.epochs, batch_size=args.batch_size,
                    protocol="seed")
    s = fast["seconds"]
    beyond = s["total"] - s["features"]
    print(f"one backbone pass: {s['features']:.1f} s; total {s['total']:.1f} s; "
          f"beyond the pass: {beyond:.1f} s (target <= 60 s)")


def quality(args) -> None:
    """The fast trainer against per-pair ``Model.fit`` on a synthetic set: the same quality."""
    print("\n== 3. quality: tiny backbone on a synthetic set, fast vs per-pair Model.fit ==")
    from verifier.synthetic import write_identity_set

    with tempfile.TemporaryDirectory() as tmp:
        data = write_identity_set(Path(tmp) / "faces", identities=10, per_identity=8,
                                  seed=0, size=32, noise=args.noise)
        kw = dict(backbone="tiny", weights="none", fine_tune=0.5, image_size=32,
                  epochs=args.quality_epochs, seed=0, embedding_dim=16)
        t = time.perf_counter()
        fast = fast_run(data, batch_size=args.quality_batch_size, protocol="seed", head="dense",
                        augment="none", hard_negatives=0, **kw)
        fast_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = fit_per_pair(data, **kw)
        ref_s = time.perf_counter() - t
    fa, ra = fast["history"]["val_auc"][-1], ref["val_auc"]
    print(f"validation ROC AUC: fast {fa:.4f} ({fast_s:.1f} s), per-pair Model.fit "
          f"{ra:.4f} ({ref_s:.1f} s); |difference| = {abs(fa - ra):.4f} (target <= 0.02)")


def face(args) -> None:
    """The README's main command, today's defaults against the earlier ones."""
    from verifier.defaults import DEFAULT_DETECTOR

    print("\n== 4. the README's main command: dlib-resnet, the default detector ==")
    before = dict(head="dense", fine_tune=0.10, augment="none", hard_negatives=0, margin=1.0,
                  protocol="seed")
    runs = {}
    for label, kw in (("defaults before", before), ("defaults now", {})):
        t = time.perf_counter()
        runs[label] = fast_run(args.data, backbone="dlib-resnet", detector=DEFAULT_DETECTOR,
                               epochs=args.epochs, **kw)
        runs[label]["wall"] = time.perf_counter() - t
        s = runs[label]["seconds"]
        print(f"{label}: {runs[label]['wall']:.1f} s wall ({s['scan']:.1f} s photos and faces, "
              f"{s['features']:.1f} s features, {s['train']:.1f} s training)")
    ratio = runs["defaults now"]["wall"] / runs["defaults before"]["wall"]
    print(f"RATIO now / before = {ratio:.2f}x   (target <= 2x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--weights", default="none")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--per-pair-steps", type=int, default=3)
    ap.add_argument("--quality-batch-size", type=int, default=16,
                    help="photos per step of the fast trainer in the quality comparison")
    ap.add_argument("--noise", type=float, default=400.0, help="pixel noise of the synthetic set")
    ap.add_argument("--quality-epochs", type=int, default=10)
    ap.add_argument("--skip", nargs="*", default=[], choices=["tutorial", "frozen", "quality", "face"])
    args = ap.parse_args()
    for step in (tutorial, frozen, quality, face):
        if step.__name__ not in args.skip:
            step(args)


if __name__ == "__main__":
    main()
