"""A trained branch (backbone, preprocessing and head) as an ONNX file, run by ONNX
Runtime: embedding, search and verification without TensorFlow.

The export is ``tf2onnx``'s, of the branch traced in inference mode with its
weights frozen into the graph (Keras 3's own ``model.export(format="onnx")`` drives
the same converter but leaves some constants as unbound inputs); every file is
checked against the Keras model on seeded inputs before it is kept
(:class:`OnnxMismatch` otherwise), and written atomically.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .keras_onnx import OnnxMismatch, session

BRANCH_FILE = "branch.onnx"
"""The ONNX file beside ``branch.keras`` in a model version's folder."""

TOLERANCE = 1e-5
"""Largest difference allowed between the Keras and the ONNX embeddings on the probe."""

ONNX_OPSET = 17

__all__ = ["BRANCH_FILE", "Branch", "OnnxMismatch", "TOLERANCE", "export_branch", "tolerance"]


def tolerance(expected: np.ndarray) -> float:
    """:data:`TOLERANCE`, absolute for embeddings up to 1 in magnitude (every trained
    model's), scaled by the largest value beyond: float32 rounding differs between two
    engines by about 1e-6 of the values (a randomly initialised ResNet-50 outputs 14)."""
    return TOLERANCE * max(1.0, float(np.abs(expected).max(initial=0.0)))


def probe(side: int, n: int = 3, seed: int = 0) -> np.ndarray:
    """Seeded branch inputs (pixel values 0-255, as photos give them)."""
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype(np.float32)


def export_branch(model, path: Path) -> Path:
    """Write ``model``'s ONNX export to ``path`` atomically, once its outputs match
    the Keras model's on :func:`probe` within :data:`TOLERANCE`. Needs TensorFlow."""
    path = Path(path)
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
    with warnings.catch_warnings():  # the converters' own deprecation notes
        warnings.simplefilter("ignore")
        traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec((None, side, side, 3), tf.float32, name="pixels"))
        frozen = convert_variables_to_constants_v2(traced)
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs], opset=ONNX_OPSET)
    return proto.SerializeToString()


class Branch:
    """An exported branch on ONNX Runtime: ``branch(pixels)`` is the ``(N, dimension)``
    float32 embedding of ``(N, side, side, 3)`` inputs, any ``N``. ``threads`` intra-op
    threads, idle threads do not spin; safe to call from several threads."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = session(str(path), threads)
        self.input = self.session.get_inputs()[0].name
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        return self.session.run(None, {self.input: pixels})[0]
