"""A trained branch (backbone, preprocessing and head) as an ONNX file, run by ONNX
Runtime: embedding, search and verification without TensorFlow.

The export is ``tf2onnx``'s, of the branch traced in inference mode with its
weights frozen into the graph (Keras 3's own ``model.export(format="onnx")`` drives
the same converter but leaves some constants as unbound inputs); every file is
checked against the Keras model on seeded inputs before it is kept
(:class:`OnnxMismatch` otherwise), and written atomically.

Memory: ``tf2onnx``'s optimiser passes rebuild every node's protobuf, weights
included, on each of their 36 or so runs, and protobuf's default (upb) messages keep
every replaced copy in their arena until the whole graph is dropped (dozens of times
the weights, and twice that with ``tf2onnx``'s default of a deep copy of the graph
before each pass; ``benchmarks/export_memory.py`` measures it, ``docs/benchmarks.md``
has the figures). The
protobuf implementation is chosen when it is first imported, so a branch whose
weights exceed :data:`IN_PROCESS_BYTES` is converted in a child process (``python -m
verifier.onnx_branch KERAS ONNX``) with protobuf's pure-Python messages, which free
what a pass replaces: the conversion then adds nothing to its graph's size, and the
caller's memory stays where it was (``benchmarks/export_memory.py``).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .keras_onnx import OnnxMismatch, session

BRANCH_FILE = "branch.onnx"
"""The ONNX file beside ``branch.keras`` in a model version's folder."""

TOLERANCE = 1e-5
"""Largest difference allowed between the Keras and the ONNX embeddings on the probe."""

RUN_SIZE = 32
"""Most inputs handed to one ONNX Runtime run; a larger batch is run in parts of this
size. Past it a run is slower per input, not faster: dlib's network on this 2-core
machine took 1.63 ms a chip in runs of 16 or 32 and 1.84 ms in runs of 64 (2 threads;
a throwaway probe of 2026-12-04, ``benchmarks/embed_parallelism.py`` measures the
whole embed), and flip averaging turns a batch of 32 photos into 64 inputs."""

ONNX_OPSET = 17

IN_PROCESS_BYTES = 4 << 20
"""Branches with more float32 weight bytes than this are exported in a child process."""

CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
"""``tf2onnx``'s switch for copying the graph before each optimiser pass."""

__all__ = ["BRANCH_FILE", "Branch", "ExportFailed", "OnnxMismatch", "TOLERANCE", "export_branch", "tolerance"]


def tolerance(expected: np.ndarray) -> float:
    """:data:`TOLERANCE`, absolute for embeddings up to 1 in magnitude (every trained
    model's), scaled by the largest value beyond: float32 rounding differs between two
    engines by about 1e-6 of the values (a randomly initialised ResNet-50 outputs 14)."""
    return TOLERANCE * max(1.0, float(np.abs(expected).max(initial=0.0)))


def probe(side: int, n: int = 3, seed: int = 0) -> np.ndarray:
    """Seeded branch inputs (pixel values 0-255, as photos give them)."""
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype(np.float32)


def export_branch(model, path: Path, *, saved: Path | None = None) -> Path:
    """Write ``model``'s ONNX export to ``path`` atomically, once its outputs match
    the Keras model's on :func:`probe` within :data:`TOLERANCE`. Needs TensorFlow.
    ``saved``: the model's ``.keras`` file where one was just written (a child
    process converts from it instead of from a fresh copy, see the module's notes)."""
    path = Path(path)
    if 4 * model.count_params() <= IN_PROCESS_BYTES:
        return _export_here(model, path)
    if saved is not None:
        return _export_in_child(Path(saved), path)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as tmp:
        copy = Path(tmp) / "branch.keras"
        model.save(copy)
        return _export_in_child(copy, path)


class ExportFailed(RuntimeError):
    """The child process converting a branch to ONNX did not finish."""


def _export_in_child(saved: Path, path: Path) -> Path:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
           # protobuf's pure-Python messages free what a pass replaces (upb's arenas keep
           # it until the whole graph goes): the conversion holds no more than its graph
           "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-m", "verifier.onnx_branch", str(saved), str(path)],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if done.returncode == 3:
        raise OnnxMismatch(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0 or not path.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise ExportFailed(f"the ONNX export of {saved} failed (exit status {done.returncode}):\n{tail}")
    return path


def _export_here(model, path: Path) -> Path:
    side = int(model.input.shape[1])
    inputs = probe(side)
    expected = np.asarray(model(inputs, training=False), dtype=np.float32)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    try:
        tmp.write_bytes(_to_onnx(model, side))
        got = Branch(tmp)(inputs)
        if got.shape != expected.shape or not np.allclose(got, expected, atol=tolerance(expected),
                                                          rtol=0):
            worst = np.abs(got - expected).max() if got.shape == expected.shape else "n/a"
            raise OnnxMismatch(f"{model.name}: the ONNX export differs from Keras "
                               f"(largest difference {worst}, allowed {tolerance(expected):.2g})")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _to_onnx(model, side: int) -> bytes:
    """The branch in inference mode traced once, its variables and captured constants
    frozen into the graph, converted by ``tf2onnx``. (Keras' own ``export(...,
    format="onnx")`` leaves constants captured by a layer, such as EfficientNet's
    normalisation, as unbound graph inputs.)"""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    for name in ("tf2onnx", "absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # without the deep copy of the whole graph before each optimiser pass (kept to
    # undo a pass that raises): half the memory and a third of the time; a pass that
    # fails now fails the export, and every export is checked against Keras anyway
    catch = os.environ.get(CATCH_ERRORS)
    os.environ[CATCH_ERRORS] = "FALSE"
    try:
        with warnings.catch_warnings():  # the converters' own deprecation notes
            warnings.simplefilter("ignore")
            traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(
                tf.TensorSpec((None, side, side, 3), tf.float32, name="pixels"))
            frozen = convert_variables_to_constants_v2(traced)
            proto, _ = tf2onnx.convert.from_graph_def(
                frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
                output_names=[t.name for t in frozen.outputs], opset=ONNX_OPSET)
    finally:
        if catch is None:
            os.environ.pop(CATCH_ERRORS, None)
        else:
            os.environ[CATCH_ERRORS] = catch
    return proto.SerializeToString()


class Branch:
    """An exported branch on ONNX Runtime: ``branch(pixels)`` is the ``(N, dimension)``
    float32 embedding of ``(N, side, side, 3)`` inputs, any ``N``. ``threads`` intra-op
    threads, idle threads do not spin; safe to call from several threads. Inputs are
    run :data:`RUN_SIZE` at a time."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = session(str(path), threads)
        self.input = self.session.get_inputs()[0].name
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        if len(pixels) <= RUN_SIZE:
            return self.session.run(None, {self.input: pixels})[0]
        return np.concatenate([self.session.run(None, {self.input: pixels[i:i + RUN_SIZE]})[0]
                               for i in range(0, len(pixels), RUN_SIZE)])


def main(argv: list[str] | None = None) -> int:
    """``python -m verifier.onnx_branch KERAS ONNX``: the child process of
    :func:`export_branch`. Exit status 0 = written, 3 = refused (the export differs
    from Keras; the reason is the last line on standard error)."""
    saved, path = (argv if argv is not None else sys.argv[1:])
    import keras

    from . import layers  # noqa: F401  (registers the branch's own layers)

    model = keras.models.load_model(saved, compile=False)
    try:
        _export_here(model, Path(path))
    except OnnxMismatch as exc:
        print(exc, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
