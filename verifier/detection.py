"""Every face in a photo, with its box, score, five landmarks, quality and (on
request) its aligned chip, without a model or the gallery."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from verifier.defaults import DEFAULT_DETECTOR, DEFAULT_MAX_FACES, DEFAULT_MAX_PIXELS, DEFAULT_PADDING
from verifier.faces import LANDMARKS, Face, FaceDetector, align
from verifier.images import decode_image
from verifier.quality import Quality, face_quality

CHIP_SIZE = 150
"""Side of the chips ``detect`` cuts when no model says otherwise (dlib's size)."""


@dataclass(frozen=True)
class DetectedFace:
    """One face: ``box`` is ``[left, top, width, height]`` in pixels of the photo as
    displayed (EXIF rotation applied)."""

    box: tuple[int, int, int, int]
    score: float | None
    """The detector's confidence (``None``: the whole photo, a model without a detector)."""
    landmarks: dict[str, tuple[float, float]] | None
    chip: np.ndarray | None = field(default=None, repr=False, compare=False)
    quality: Quality | None = None
    """How far the face can be trusted (:mod:`verifier.quality`; ``None``: the whole photo)."""

    @classmethod
    def of(cls, face: Face | None, chip: np.ndarray | None = None,
           size: tuple[int, int] = (0, 0), quality: Quality | None = None, **more) -> "DetectedFace":
        """A detector's face (or, for ``None``, the whole ``size`` photo) as answered."""
        if face is None:
            return cls((0, 0, *size), None, None, chip, None, **more)
        return cls(tuple(int(round(v)) for v in face.box), face.confidence,
                   dict(zip(LANDMARKS, face.landmarks)), chip, quality, **more)

    def as_dict(self) -> dict:
        return {"box": list(self.box),
                "score": None if self.score is None else round(self.score, 6),
                "landmarks": None if self.landmarks is None else
                {k: [round(x, 2), round(y, 2)] for k, (x, y) in self.landmarks.items()},
                "quality": None if self.quality is None else self.quality.as_dict()}


@dataclass
class Detection:
    """The faces of one photo, largest first (or the reason it could not be read)."""

    photo: str
    width: int = 0
    height: int = 0
    faces: list[DetectedFace] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"photo": self.photo, "width": self.width, "height": self.height,
                "faces": [f.as_dict() for f in self.faces], "error": self.error}


def detect_faces(data: bytes, name: str = "<bytes>", *, max_faces: int = DEFAULT_MAX_FACES,
                 chip_size: int | None = None, padding: float = DEFAULT_PADDING,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 detector: FaceDetector | None = None) -> Detection:
    """Detect up to ``max_faces`` faces in photo bytes, largest first; with
    ``chip_size`` each face also carries its aligned chip. Unusable bytes raise
    :class:`ImageError`. Nothing is cached or stored."""
    image = decode_image(data, name=name, max_pixels=max_pixels)
    found = (detector or FaceDetector.named(DEFAULT_DETECTOR)).detect(image)[:max_faces]
    faces = [DetectedFace.of(f, align(image, f.landmarks, chip_size, padding) if chip_size else None,
                             quality=face_quality(image, f)) for f in found]
    return Detection(name, int(image.shape[1]), int(image.shape[0]), faces)
