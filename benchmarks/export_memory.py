"""Where a model's ONNX export at save time spends its memory (the peak of `train`).

    python benchmarks/export_memory.py [--backbone dlib-resnet] [--head adapter]

Builds a branch, then exports it as `verifier/onnx_branch.py` does, step by step,
printing this process's resident memory (sampled every 10 ms) after each: trace,
freeze, graph_def, tf2onnx's conversion, ONNX Runtime's first run, and the largest
difference from Keras. Then `export_branch` as `train` calls it (the conversion in a
child process with protobuf's pure-Python messages, see `verifier/onnx_branch.py`),
with the child's own peak beside this process's.

    python benchmarks/export_memory.py --pipeline

runs the README's main command instead (`verifier pipeline --data ../shared/data/
seed-faces --backbone dlib-resnet`, a fresh workspace) and prints the peak resident
memory of its process, of the export's child, and of both together.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet


def rss_mb() -> int:
    return _rss_of(os.getpid())


class Peak:
    """The largest resident set of this process since the last :meth:`mark` (sampled
    every 10 ms), and of its children."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self.child = 0
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            for kid in _children(os.getpid()):
                self.child = max(self.child, _rss_of(kid))
            time.sleep(0.01)

    def mark(self, step: str) -> None:
        print(f"{step:<40} now {rss_mb():6d} MB, peak since the last step {self.peak:6d} MB", flush=True)
        self.peak = rss_mb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="dlib-resnet")
    ap.add_argument("--head", default="adapter")
    ap.add_argument("--image-size", type=int, default=150, help="input side (dlib-resnet: 150)")
    ap.add_argument("--pipeline", action="store_true", help="measure the README's main command")
    args = ap.parse_args()
    if args.pipeline:
        return pipeline()
    steps = Peak()
    import tempfile

    import numpy as np
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from verifier import onnx_branch
    from verifier.network import build_branch

    steps.mark("start (TensorFlow imported)")
    model = build_branch(args.backbone, head=args.head, image_size=args.image_size,
                         weights="default" if args.backbone == "dlib-resnet" else "none").model
    side = int(model.input.shape[1])
    inputs = onnx_branch.probe(side)
    expected = np.asarray(model(inputs, training=False))
    steps.mark(f"{args.backbone} built, one forward pass")
    traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((None, side, side, 3), tf.float32, name="pixels"))
    steps.mark("traced")
    frozen = convert_variables_to_constants_v2(traced)
    steps.mark("frozen")
    graph_def = frozen.graph.as_graph_def()
    steps.mark(f"graph_def ({graph_def.ByteSize() // 1024} kB, {len(graph_def.node)} nodes)")
    proto, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[t.name for t in frozen.inputs],
        output_names=[t.name for t in frozen.outputs], opset=onnx_branch.ONNX_OPSET)
    steps.mark("tf2onnx.convert.from_graph_def")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "branch.onnx"
        path.write_bytes(proto.SerializeToString())
        got = onnx_branch.Branch(path)(inputs)
    steps.mark("ONNX Runtime, first run")
    print(f"largest difference from Keras: {float(np.abs(got - expected).max()):.2e}")
    steps.child = 0
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        onnx_branch.export_branch(model, Path(tmp) / "branch.onnx")
        seconds = time.perf_counter() - started
    in_child = 4 * model.count_params() > onnx_branch.IN_PROCESS_BYTES
    steps.mark(f"export_branch ({'child process' if in_child else 'this process'}, {seconds:.1f} s)")
    if in_child:
        print(f"{'  the child process':<40} peak {steps.child:6d} MB")


def pipeline() -> None:
    """The README's main command in a fresh workspace, its process tree sampled every
    50 ms: the command's peak, its children's (the ONNX export), and their sum."""
    import subprocess
    import tempfile

    seed = SEED
    verifier = Path(sys.executable).parent / "verifier"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VERIFIER_HOME": tmp}
        started = time.perf_counter()
        proc = subprocess.Popen([str(verifier), "-q", "pipeline", "--data", str(seed), "--backbone",
                                 "dlib-resnet"], env=env, stdout=subprocess.DEVNULL)
        peaks = {"command": 0, "children": 0, "together": 0}
        while proc.poll() is None:
            rss = {pid: _rss_of(pid) for pid in [proc.pid, *_children(proc.pid)]}
            peaks["command"] = max(peaks["command"], rss.pop(proc.pid))
            peaks["children"] = max(peaks["children"], *rss.values(), 0)
            peaks["together"] = max(peaks["together"], _rss_of(proc.pid) + sum(rss.values()))
            time.sleep(0.05)
    print(f"verifier pipeline (exit {proc.returncode}, {time.perf_counter() - started:.1f} s): peak "
          f"{peaks['command']} MB, its children {peaks['children']} MB, together {peaks['together']} MB")


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(kid) for kid in children.read().split()]
    except OSError:
        return []


if __name__ == "__main__":
    main()
