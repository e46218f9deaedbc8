"""MTCNN's cascade (PNet over an image pyramid, RNet, ONet) with its networks on
ONNX Runtime.

The ``mtcnn`` package runs its Keras networks through TensorFlow: eagerly, once per
pyramid level, each level resized by a separate op from a float64 copy of the
photo. On the CPU, TensorFlow's oneDNN kernels are prepared anew for nearly every
input shape (every photo has its own pyramid) and its small element-wise layers
(PReLU) cost as much as the convolutions; ONNX Runtime runs the same weights
without either cost (``benchmarks/faces_speed.py`` shows the stage times).

Everything around the networks computes what the package computes (pyramid
scales, thresholds, box regression, non-maximum suppression, landmark placement,
the output format: :mod:`verifier.mtcnn_boxes`, and :func:`suppress` here), and the
two image operations the package runs in TensorFlow (area resize, bilinear
crop-and-resize) are computed the same way in NumPy (tested against TensorFlow's),
so no TensorFlow op runs per photo. The networks' ONNX translations are cached on
disk (:meth:`MTCNNPipeline.cached`), so a process that detects faces does not load
TensorFlow at all. The detections are ``MTCNN.detect_faces``'s:
``tests/verifier/test_faces.py`` and ``test_keras_onnx.py`` compare them photo by
photo.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import mtcnn_boxes as boxes_


def _area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Input indices and weights, ``(n_out, k)`` each, of an area (box-filter) resize
    along one axis, as TensorFlow's ``ResizeArea`` computes them."""
    scale = n_in / n_out
    starts = np.arange(n_out) * scale
    index = np.floor(starts).astype(np.int64)[:, None] + np.arange(int(np.ceil(scale)) + 1)[None, :]
    low = np.maximum(index, starts[:, None])
    high = np.minimum(index + 1, (starts + scale)[:, None])
    return np.minimum(index, n_in - 1), (np.clip(high - low, 0, None) / scale).astype(np.float32)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``tf.image.resize(image, (height, width), "area")`` of one ``(h, w, c)`` float32
    image, as separable weighted sums of at most a few rows and columns each. (A
    matrix product is no faster here: NumPy's BLAS threads then compete with the
    other photos' threads.)"""
    rows, row_weights = _area_weights(image.shape[0], height)
    cols, col_weights = _area_weights(image.shape[1], width)
    out = np.einsum("hk,hkwc->hwc", row_weights, image[rows], optimize=True)
    return np.einsum("wk,hwkc->hwc", col_weights, out[:, cols], optimize=True)


def crop_and_resize(image: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """``tf.image.crop_and_resize`` (bilinear, zeros outside the image) of one
    ``(h, w, c)`` float32 image: ``side`` x ``side`` patches under ``boxes``, given as
    ``[y1, x1, y2, x2]`` fractions of ``h - 1`` and ``w - 1``."""
    h, w = image.shape[:2]
    steps = np.arange(side, dtype=np.float32)
    boxes = boxes.astype(np.float32)

    def axis(start, end, size):
        if side > 1:
            at = start[:, None] * (size - 1) + steps[None, :] * ((end - start) * (size - 1) / (side - 1))[:, None]
        else:
            at = np.repeat((0.5 * (start + end) * (size - 1))[:, None], side, 1)
        inside = (at >= 0) & (at <= size - 1)
        low = np.clip(np.floor(at), 0, size - 1).astype(np.int64)
        high = np.clip(np.ceil(at), 0, size - 1).astype(np.int64)
        return low, high, (at - np.floor(at)).astype(np.float32), inside

    y_low, y_high, y_frac, y_in = axis(boxes[:, 0], boxes[:, 2], h)
    x_low, x_high, x_frac, x_in = axis(boxes[:, 1], boxes[:, 3], w)
    # the four neighbours by flat pixel index (one gather each, not two-axis indexing)
    pixels = image.reshape(h * w, -1)
    rows_low, rows_high = (y_low * w)[:, :, None], (y_high * w)[:, :, None]
    cols_low, cols_high = x_low[:, None, :], x_high[:, None, :]
    fx = x_frac[:, None, :, None]
    top_left, top_right = pixels[rows_low + cols_low], pixels[rows_low + cols_high]
    bottom_left, bottom_right = pixels[rows_high + cols_low], pixels[rows_high + cols_high]
    top = top_left + (top_right - top_left) * fx
    bottom = bottom_left + (bottom_right - bottom_left) * fx
    patches = top + (bottom - top) * y_frac[:, :, None, None]
    return patches * (y_in[:, :, None, None] & x_in[:, None, :, None])


def suppress(boxes: np.ndarray, threshold: float, method: str = "union",
             initial_sort: bool = True) -> np.ndarray:
    """``mtcnn.utils.bboxes.smart_nms_from_bboxes`` for the boxes of one image (rows
    ``[image, x1, y1, x2, y2, score, ...]``), with the same arithmetic and order: a
    box goes when any box before it (by score, when sorting) overlaps it more than
    ``threshold``, suppressed or not. Boolean masks instead of integer matrices."""
    if initial_sort:
        boxes = boxes[np.argsort(boxes[:, 5])[::-1]]
    if len(boxes) == 0:
        return boxes
    corners = boxes[:, 1:5]
    area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    a, b = corners[None, :, :], corners[:, None, :]
    height = np.maximum(0, np.minimum(a[:, :, 2], b[:, :, 2]) - np.maximum(a[:, :, 0], b[:, :, 0]))
    width = np.maximum(0, np.minimum(a[:, :, 3], b[:, :, 3]) - np.maximum(a[:, :, 1], b[:, :, 1]))
    inter = height * width
    with np.errstate(divide="ignore", invalid="ignore"):  # a box of no area overlaps nothing
        if method == "union":
            overlap = inter / (area[:, None] + area[None, :] - inter)
        else:
            overlap = inter / np.minimum(area[:, None], area[None, :])
    return boxes[~np.triu(overlap > threshold, 1).any(axis=0)]


NETWORKS = (("pnet", None), ("rnet", 24), ("onet", 48))
"""MTCNN's three networks and their input sides (PNet takes any size)."""

PINNED_VERSION = "1.0.0"
"""The ``mtcnn`` release whose weight files :data:`WEIGHTS_SHA256` pins."""
WEIGHTS_SHA256 = {
    "pnet.lz4": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet.lz4": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet.lz4": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
}
"""The SHA-256 of the networks' weight files inside the ``mtcnn`` package (1.0.0, MIT
licence, ``mtcnn/assets/weights/``), the ones the tests and benchmarks measured:
checked whenever a process loads the detector, so a changed package is refused
rather than silently detecting other faces."""


class WeightsMismatch(Exception):
    """The ``mtcnn`` package's weights are not the ones this project pins."""


def check_weights(folder: Path | None = None) -> None:
    """Refuse (:class:`WeightsMismatch`) weight files that are missing or differ from
    :data:`WEIGHTS_SHA256` (default folder: the installed package's)."""
    import hashlib

    if folder is None:
        from importlib.util import find_spec

        spec = find_spec("mtcnn")  # found, not imported (importing it starts TensorFlow)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsMismatch("the mtcnn package is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    for name, want in WEIGHTS_SHA256.items():
        path = Path(folder) / name
        try:
            got = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise WeightsMismatch(f"{path}: cannot be read ({exc.strerror})") from None
        if got != want:
            raise WeightsMismatch(f"{path}: SHA-256 {got} is not the pinned {want}")



def cache_dir(root: Path | None = None) -> Path:
    """Where the networks' ONNX translations are kept between processes: one folder
    per ``mtcnn`` package version and translator opset, under ``root`` (default
    ``$VERIFIER_CACHE``, else ``$XDG_CACHE_HOME/siamese-verifier``, else
    ``~/.cache/siamese-verifier``)."""
    from importlib.metadata import version

    from .keras_onnx import OPSET

    root = root or os.environ.get("VERIFIER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "siamese-verifier")
    return Path(root) / f"mtcnn-{version('mtcnn')}-onnx{OPSET}"


class MTCNNPipeline:
    """MTCNN's networks (the ``mtcnn`` package's weights) on ONNX Runtime with
    ``threads`` threads per call. Thread-safe: calls share no state."""

    def __init__(self, networks: dict[str, bytes | str], threads: int = 1) -> None:
        from .keras_onnx import session

        self._pnet, self._rnet, self._onet = (session(networks[name], threads) for name, _ in NETWORKS)

    @classmethod
    def from_package(cls, package_mtcnn, threads: int = 1) -> "MTCNNPipeline":
        """Translate a ``mtcnn.MTCNN``'s Keras networks (this needs TensorFlow)."""
        return cls(cls.translate(package_mtcnn), threads)

    @staticmethod
    def translate(package_mtcnn) -> dict[str, bytes]:
        from .keras_onnx import to_onnx

        return {name: to_onnx(stage.model, side)
                for (name, side), stage in zip(NETWORKS, package_mtcnn.stages)}

    @classmethod
    def cached(cls, threads: int = 1, folder: Path | None = None) -> "MTCNNPipeline":
        """The networks from the translations cached in ``folder`` (default
        :func:`cache_dir`): no TensorFlow. The package's weight files are checked
        against their pinned SHA-256 first (:func:`check_weights`). The first time,
        the package's networks are loaded (with TensorFlow), translated, checked and
        cached (atomic writes; a folder that cannot be written only costs the next
        process the same work)."""
        check_weights()
        folder = Path(folder or cache_dir())
        files = {name: folder / f"{name}.onnx" for name, _ in NETWORKS}
        if all(f.is_file() for f in files.values()):
            try:
                return cls({name: str(f) for name, f in files.items()}, threads)
            except Exception:  # a damaged file: translate again
                pass
        from mtcnn import MTCNN

        networks = cls.translate(MTCNN())
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in networks.items():
                tmp = files[name].with_name(f".{name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, files[name])
        except OSError:
            pass
        return cls(networks, threads)

    def detect(self, image: np.ndarray, min_face_size: float = 20, scale_factor: float = 0.709,
               threshold_pnet: float = 0.6, threshold_rnet: float = 0.7, threshold_onet: float = 0.8,
               nms_pnet1: float = 0.5, nms_pnet2: float = 0.7, nms_rnet: float = 0.7,
               nms_onet: float = 0.7, pyramid: str = "area", onet_passes: int = 1) -> list[dict]:
        """What ``MTCNN.detect_faces(image, ...)`` returns for an RGB ``uint8`` image: a
        list of ``{"box", "confidence", "keypoints"}``; the keyword arguments and their
        defaults are the package's. ``pyramid="pillow"`` makes the pyramid's levels
        with Pillow's box filter from the 8-bit photo instead of TensorFlow's area
        resize of the normalised one: nearly the same pixels, not the package's
        detections (``benchmarks/detector_settings.py`` measures both). ``onet_passes``
        above 1 first moves the boxes to where ONet puts them, then asks it again."""
        h, w = image.shape[:2]
        normalized = (image.astype(np.float32) - 127.5) / 128
        photo = None
        if pyramid == "pillow":
            from PIL import Image

            photo = Image.fromarray(np.ascontiguousarray(image))
        elif pyramid != "area":
            raise ValueError(f"unknown pyramid {pyramid!r} (known: area, pillow)")

        # PNet over the pyramid: proposals suppressed per level, then across levels
        found = []
        for scale in boxes_.scale_pyramid(w, h, min_face_size, scale_factor):
            size = (int(h * scale), int(w * scale))  # truncated, as the package's resize does
            if min(size) < 12:
                continue  # smaller than PNet's 12-pixel window: no output
            if photo is None:
                level = resize_area(normalized, *size)
            else:
                level = (np.asarray(photo.resize(size[::-1], Image.BOX), np.float32) - 127.5) / 128
            reg, cls = self._pnet.run(None, {"input": level[None]})
            found.append(suppress(boxes_.proposals(reg, cls, threshold_pnet, scale), nms_pnet1,
                                  "union", initial_sort=False))
        boxes = np.concatenate(found, axis=0) if found else np.empty((0, 6))
        if len(boxes) == 0:
            return []
        boxes = boxes_.to_square(suppress(boxes, nms_pnet2, "union"))

        # RNet refines the proposals
        offsets, scores = self._patches(self._rnet, normalized, boxes, 24)
        boxes = boxes_.above(boxes_.regress(boxes_.rescore(boxes, scores), offsets), threshold_rnet)
        if len(boxes) == 0:
            return []
        boxes = boxes_.to_square(suppress(boxes, nms_rnet, "union"))

        # ONet: final boxes, confidences and landmarks (after ``onet_passes - 1`` passes
        # that only move the boxes to where ONet puts them)
        for _pass in range(onet_passes - 1):
            offsets, _, scores = self._patches(self._onet, normalized, boxes, 48)
            boxes = boxes_.to_square(boxes_.regress(boxes_.rescore(boxes, scores), offsets))
        offsets, landmarks, scores = self._patches(self._onet, normalized, boxes, 48)
        landmarks = boxes_.place_landmarks(landmarks, boxes)
        boxes = boxes_.regress(boxes_.rescore(boxes, scores), offsets)
        boxes = boxes_.above(np.concatenate([boxes, landmarks], axis=-1), threshold_onet, column=5)
        if len(boxes) == 0:
            return []
        boxes = suppress(boxes, nms_onet, "min")
        return boxes_.as_faces(boxes_.clip(boxes, image.shape))

    def landmarks(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ONet's five landmarks (rows ``[x0..x4, y0..y4]`` in the photo's pixels) and
        its confidence for each of ``boxes`` (rows ``[x1, y1, x2, y2]`` of an RGB
        ``uint8`` image), asked once on each box made square, as ONet is asked in the
        cascade. Only the part of the photo under the boxes is normalised."""
        h, w = image.shape[:2]
        rows = boxes_.to_square(np.column_stack([np.zeros(len(boxes)), boxes[:, :4], np.zeros(len(boxes))]))
        # where the package's crop samples ([y1, x1, y2, x2] / [h, w, h, w] of h - 1 and
        # w - 1), and the part of the photo those samples need
        at = rows[:, [2, 1, 4, 3]] / np.array([h, w, h, w]) * np.array([h - 1, w - 1, h - 1, w - 1])
        y0, x0 = (max(0, int(np.floor(at[:, k].min())) - 1) for k in (0, 1))
        y1, x1 = (min(n, int(np.ceil(at[:, k].max())) + 2) for k, n in ((2, h), (3, w)))
        if y1 - y0 < 2 or x1 - x0 < 2:  # every box outside the photo
            return np.zeros((len(boxes), 10)), np.zeros(len(boxes))
        region = (image[y0:y1, x0:x1].astype(np.float32) - 127.5) / 128
        crop = ((at - [y0, x0, y0, x0]) / [y1 - y0 - 1, x1 - x0 - 1, y1 - y0 - 1, x1 - x0 - 1])
        _, landmarks, scores = self._onet.run(None, {"input": crop_and_resize(region, crop, 48)})
        return boxes_.place_landmarks(landmarks, rows), scores[:, -1]

    @staticmethod
    def _patches(session, normalized: np.ndarray, boxes: np.ndarray, side: int) -> list[np.ndarray]:
        """``session``'s outputs for the ``side`` x ``side`` patches under ``boxes``."""
        h, w = normalized.shape[:2]
        # the package's normalisation of the corners: [y1, x1, y2, x2] / [h, w, h, w]
        crop = (boxes[:, [2, 1, 4, 3]] / np.array([h, w, h, w])).astype(np.float32)
        return session.run(None, {"input": crop_and_resize(normalized, crop, side)})
