"""What an int8 face network would buy and cost, side by side in one run (issue 31's
third item: "a quantised branch only if its vectors stay within a tolerance you
state and EER does not move").

    python benchmarks/quantised_branch.py [--detector yunet] [--rounds 5]

The untrained dlib network (`--head none`, the branch every dlib-resnet model starts
from) is exported as `verifier train` exports it, then quantised statically by ONNX
Runtime's own tool (QDQ, int8 weights per output channel, uint8 activations whose
ranges are calibrated on the aligned faces of the even-numbered seed photos,
`--calibration` MinMax or Percentile; ONNX Runtime's Entropy gave MinMax's figures to
the digit here, so it is not offered). Printed:

- milliseconds per face of each network in runs of 32 (`verifier.onnx_branch.Branch`), on 1 and 2 threads (rounds
  alternate between the two networks; medians);
- on the odd-numbered photos, which calibration never saw: how far each face's
  vector moved, and how far each pair's distance moved (the threshold is about 0.5,
  calibrated on the float network's distances);
- the EER over all 8,128 seed pairs with each network (calibration's faces
  included), one vector per face and flip averaged (the default).

Nothing here changes what `verifier` runs: the figures say whether it should.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier.defaults import DETECTORS, YUNET  # noqa: E402


def faces(data: Path, home: Path, detector: str) -> tuple[Path, np.ndarray, list[str]]:
    """The exported untrained branch, and the aligned face of every seed photo with
    its person, in path order."""
    from jobs.models import ensure_onnx, load_model
    from jobs.train import TrainOptions, train
    from storage.database import open_database
    from storage.workspace import Workspace
    from verifier.images import read_photo_bytes, scan_dataset

    ws = Workspace.open(home)
    train(ws, TrainOptions(data=data, backbone="dlib-resnet", head="none", fine_tune=0.0,
                           augment="none", detector=detector, name="m"),
          quiet=True, echo=lambda s: None, database=open_database(ws.database_url))
    loaded = load_model(ws, "m")
    photos = sorted(scan_dataset(data).photos, key=lambda p: str(p.path))
    chips = np.stack([loaded.preparer.prepare_bytes(read_photo_bytes(p.path), p.path).pixels
                      for p in photos]).astype(np.float32)
    return ensure_onnx(ws, "m"), chips, [p.identity for p in photos]


def quantise(source: Path, target: Path, calibration: np.ndarray, method: str) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = onnx.load(str(source)).graph.input[0].name
    prepared = target.with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: calibration[i:i + 8]} for i in range(0, len(calibration), 8)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method))


def speed(paths: dict[str, Path], chips: np.ndarray, rounds: int) -> None:
    from verifier.onnx_branch import RUN_SIZE, Branch

    batch = chips[:RUN_SIZE]
    for threads in (1, 2):
        branches = {label: Branch(path, threads) for label, path in paths.items()}
        for branch in branches.values():
            branch(batch)  # warm
        spent: dict[str, list[float]] = {label: [] for label in branches}
        for _ in range(rounds):
            for label, branch in branches.items():
                t = time.perf_counter()
                branch(batch)
                spent[label].append((time.perf_counter() - t) / len(batch))
        ms = {label: float(np.median(v)) * 1000 for label, v in spent.items()}
        print(f"{threads} thread{'s' * (threads > 1)}: " + ", ".join(f"{k} {v:.2f} ms a face" for k, v in ms.items())
              + f" -> int8 {ms['float32'] / ms['int8']:.2f}x faster", flush=True)


def drift(float_vectors: np.ndarray, int8_vectors: np.ndarray) -> None:
    moved = np.linalg.norm(float_vectors - int8_vectors, axis=1)
    i, j = np.triu_indices(len(float_vectors), k=1)
    d_float = np.linalg.norm(float_vectors[i] - float_vectors[j], axis=1)
    d_int8 = np.linalg.norm(int8_vectors[i] - int8_vectors[j], axis=1)
    change = np.abs(d_float - d_int8)
    near = np.abs(d_float - 0.5) < 0.05
    print(f"held-out faces ({len(moved)}): vector moved median {np.median(moved):.4f}, max {moved.max():.4f} "
          f"(vector length median {np.median(np.linalg.norm(float_vectors, axis=1)):.3f}); "
          f"pair distance changed median {np.median(change):.4f}, p99 {np.percentile(change, 99):.4f}, "
          f"max {change.max():.4f}; pairs within 0.05 of a 0.5 threshold: {int(near.sum())}, "
          f"{int((near & ((d_float < 0.5) != (d_int8 < 0.5))).sum())} of them on the other side with int8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--detector", choices=[d for d in DETECTORS if d != "none"], default=YUNET)
    ap.add_argument("--calibration", choices=("MinMax", "Percentile"), default="MinMax")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import onnxruntime as ort
    from faces_speed import pair_metrics

    from verifier.onnx_branch import Branch

    ort.set_default_logger_severity(3)
    with tempfile.TemporaryDirectory() as tmp:
        source, chips, names = faces(args.data, Path(tmp) / "home", args.detector)
        target = Path(tmp) / "branch.int8.onnx"
        quantise(source, target, chips[0::2], args.calibration)
        print(f"{len(chips)} faces ({args.detector}); int8 calibrated ({args.calibration}) on "
              f"{len(chips[0::2])} of them", flush=True)
        paths = {"float32": source, "int8": target}
        speed(paths, chips, args.rounds)
        branches = {label: Branch(path, 2) for label, path in paths.items()}
        got = {label: branch(chips) for label, branch in branches.items()}
        drift(got["float32"][1::2], got["int8"][1::2])
        for label, branch in branches.items():
            flipped = (got[label] + branch(chips[:, :, ::-1])) / 2
            lines = [f"{tta} EER {pair_metrics(v, names)[1] * 100:.3f}%"
                     for tta, v in (("one vector", got[label]), ("flip averaged", flipped))]
            print(f"{label:>8}: " + ", ".join(lines) + f" over {len(names) * (len(names) - 1) // 2} pairs")


if __name__ == "__main__":
    main()
