"""How far a detected face can be trusted, in [0, 1], from four signs that each
predict recognition errors: the detector's confidence, the face's size in pixels,
its sharpness, and how far it is turned away (from the landmarks). The score is
the weakest of the four, so a reason can always be named ("face 38 px wide",
"blurred"). ``benchmarks/hard_photos.py`` shows that pairs of faces above a cut
have a lower error rate than all pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import PoorQuality
from .faces import Face

SMALL_FACE_PX = 30.0
"""A face this wide or narrower scores 0 for size."""
GOOD_FACE_PX = 80.0
"""A face this wide or wider scores 1 for size."""
SHARP_REFERENCE = 0.10
"""Laplacian variance over pixel variance of a face resized to :data:`SHARP_SIDE` px
that scores 1 for sharpness: above it sit most sharp seed faces, far below it the same
faces blurred as :mod:`verifier.degrade` blurs them (`benchmarks/hard_photos.py`
measures both)."""
SHARP_SIDE = 64
FRONTAL_YAW, MAX_YAW = 0.15, 0.75
"""Nose offsets from the eyes' midpoint, in inter-eye distances: up to the first
scores 1 for pose (the seed photos' median is 0.07), the second 0 (a profile).
The seed photos turned furthest (0.55) are still recognised well (their nearest
photo of the same person at 0.44 or closer, of another person at 0.60 or further),
so they score 0.33, not 0."""
LOW_CONFIDENCE, HIGH_CONFIDENCE = 0.80, 0.95
"""Detector confidences mapped to 0 and 1 (0.80 is the last stage's own cut; the
least sure seed face, 0.87, is recognised as well as any)."""
REASON_BELOW = 0.5
"""A part under this is named as a reason."""


@dataclass(frozen=True)
class Quality:
    """A face's quality: ``score`` (the weakest part) and its parts, each in [0, 1]."""

    score: float
    confidence: float
    size: float
    sharpness: float
    pose: float
    width: int
    """The face's width in pixels."""

    def reasons(self, below: float = REASON_BELOW) -> list[str]:
        """What makes the face poor, in words (empty for a good face)."""
        out = []
        if self.size < below:
            out.append(f"face {self.width} px wide")
        if self.sharpness < below:
            out.append("blurred")
        if self.pose < below:
            out.append("turned away")
        if self.confidence < below:
            out.append("unsure detection")
        return out

    def as_dict(self) -> dict:
        return {"score": round(self.score, 4), "confidence": round(self.confidence, 4),
                "size": round(self.size, 4), "sharpness": round(self.sharpness, 4),
                "pose": round(self.pose, 4), "width": self.width, "reasons": self.reasons()}


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def sharpness(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Variance of the Laplacian of the face over the variance of its pixels (gray,
    resized to :data:`SHARP_SIDE` px): blur relative to the face's size and
    contrast, so a dark or side-lit face is not taken for a blurred one."""
    h, w = image.shape[:2]
    left, top, bw, bh = box
    x0, y0 = int(max(0, left)), int(max(0, top))
    x1, y1 = int(min(w, left + bw)), int(min(h, top + bh))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    gray = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1])).convert("L")
    g = np.asarray(gray.resize((SHARP_SIDE, SHARP_SIDE), Image.Resampling.BILINEAR), np.float32)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var() / max(float(g.var()), 1.0))


def yaw(face: Face) -> float:
    """How far the nose sits from the eyes' midpoint, in inter-eye distances (0:
    frontal; about 0.5: a profile)."""
    (lx, ly), (rx, ry), (nx, ny) = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    eyes = np.hypot(rx - lx, ry - ly)
    if eyes < 1e-6:
        return 1.0
    # the nose's offset along the eye line
    along = ((nx - (lx + rx) / 2) * (rx - lx) + (ny - (ly + ry) / 2) * (ry - ly)) / eyes
    return float(abs(along) / eyes)


def face_quality(image: np.ndarray, face: Face) -> Quality:
    """The quality of ``face`` in ``image`` (the photo it was detected in)."""
    width = float(face.box[2])
    parts = {
        "confidence": _ramp(float(face.confidence), LOW_CONFIDENCE, HIGH_CONFIDENCE),
        "size": _ramp(width, SMALL_FACE_PX, GOOD_FACE_PX),
        "sharpness": float(np.clip(sharpness(image, face.box) / SHARP_REFERENCE, 0.0, 1.0)),
        "pose": 1.0 - _ramp(yaw(face), FRONTAL_YAW, MAX_YAW),
    }
    return Quality(min(parts.values()), width=int(round(width)), **parts)


def require_quality(quality: Quality | None, minimum: float, name: object = "<bytes>") -> None:
    """Refuse a face under ``minimum`` (:class:`PoorQuality`, saying why); the whole
    photo of a model without a detector is not rated and passes."""
    if quality is None or minimum <= 0 or quality.score >= minimum:
        return
    reasons = quality.reasons(below=max(minimum, REASON_BELOW)) or ["a weak face"]
    raise PoorQuality(f"{name}: face quality {quality.score:.2f} is below the minimum {minimum:.2f} "
                      f"({', '.join(reasons)})", quality.score, reasons)


QUALITY_BANDS = ((0.0, 0.5, "poor (< 0.5)"), (0.5, 0.8, "fair (0.5-0.8)"), (0.8, 1.0, "good (>= 0.8)"))
"""How reports split pairs by the lower quality of their two faces."""


def band_of(quality: float | None) -> str:
    """The name of the band ``quality`` falls in (``not rated`` for ``None``)."""
    if quality is None:
        return "not rated"
    for low, high, name in QUALITY_BANDS:
        if quality < high or high == QUALITY_BANDS[-1][1]:
            if quality >= low:
                return name
    return QUALITY_BANDS[0][2]
