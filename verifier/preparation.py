"""Turning a photo into branch inputs with the model's own preprocessing: detect its
faces (through a cache the caller gives, keyed by the photo's content), choose one or
all, align them and judge their quality, or use the whole photo."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from verifier.defaults import DEFAULT_DETECTOR, DEFAULT_MAX_FACES, DEFAULT_MAX_PIXELS
from verifier.errors import NoFaceFound, NoSuchFace
from verifier.faces import (DEFAULT_PADDING, LANDMARKS, Face, FaceDetector, align, box_overlap,
                            largest_first)
from verifier.images import decode_image, read_photo_bytes, resize, sha256_bytes
from verifier.model_config import ModelConfig
from verifier.quality import Quality, face_quality


class FaceStatus(str, enum.Enum):
    """What a branch input was made from."""

    FACE = "face"                    # the photo's one face
    SEVERAL_FACES = "several_faces"  # one of the photo's faces (the largest, or the one chosen)
    NO_FACE = "no_face"              # no face was found: the whole photo
    WHOLE = "whole"                  # a model without a detector: the whole photo

    @classmethod
    def of(cls, faces: int) -> "FaceStatus":
        """The status of a face taken from a photo where the detector found ``faces``."""
        return cls.NO_FACE if faces == 0 else cls.FACE if faces == 1 else cls.SEVERAL_FACES

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class FaceStore(Protocol):
    """Where a preparer keeps the detections of a photo content, by its SHA-256
    (``storage.facecache.FaceCache`` in a workspace)."""

    def get(self, sha256: str) -> list[dict] | None:
        """The stored detections (``Face.as_dict`` each), or ``None`` if never stored."""

    def put(self, sha256: str, faces: list[dict]) -> None:
        """Store the detections of a photo content."""


@dataclass(frozen=True)
class Prepared:
    """A branch input and how it was made: ``face``, ``several_faces`` (the most
    prominent was used), ``no_face`` (the whole photo was used) or ``whole`` (no
    detector)."""

    pixels: np.ndarray
    status: FaceStatus
    sha256: str
    detections: tuple[dict, ...] | None = None
    """What the detector found when it ran for this call and the result was not
    cached (``remember=False``): :meth:`PhotoPreparer.remember` caches it later."""
    face: Face | None = None
    """The face used (``None``: the whole photo)."""
    index: int = 0
    """Its position among the photo's faces, largest first."""
    found: int = 0
    """Faces the detector found in the photo."""
    size: tuple[int, int] = (0, 0)
    """The photo's width and height as displayed (EXIF rotation applied)."""
    quality: Quality | None = None
    """How far the face can be trusted (``None``: the whole photo was used)."""

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``[left, top, width, height]`` of the face in the photo (the whole photo
        when no face was used)."""
        if self.face is None:
            return (0, 0, *self.size)
        return tuple(int(round(v)) for v in self.face.box)


FaceChoice = int | tuple[float, float, float, float] | None
"""Which face of a photo to use: ``None`` the largest, ``N`` the ``N``-th largest
(from 0), a box ``(x, y, width, height)`` the face that overlaps it most."""

MIN_BOX_OVERLAP = 0.3
"""A face chosen by its box must overlap it at least this much (intersection over
union); boxes of one face from two detector runs overlap far more."""


def choose_face(faces: list[Face], choice: FaceChoice, name: object = "<bytes>") -> int:
    """The position in ``faces`` (largest first) of the face ``choice`` names."""
    if choice is None:
        return 0
    if isinstance(choice, int):
        if not 0 <= choice < len(faces):
            raise NoSuchFace(f"{name}: there is no face {choice}; the photo holds "
                             f"{len(faces)} face{'s' * (len(faces) != 1)} (0 is the largest)")
        return choice
    overlaps = [box_overlap(f.box, choice) for f in faces]
    best = int(np.argmax(overlaps))
    if overlaps[best] < MIN_BOX_OVERLAP:
        raise NoSuchFace(f"{name}: no face found at {[int(round(v)) for v in choice]}")
    return best


class PhotoPreparer:
    """Preprocessing recorded in a model's config (``detector``, ``face_padding``)."""

    @property
    def face_detector(self) -> FaceDetector:
        """The model's detector, or the default one for a model that has none."""
        return self._detector or FaceDetector.named(DEFAULT_DETECTOR)

    def __init__(self, size: int, detector: str = "none", padding: float = DEFAULT_PADDING,
                 cache: FaceStore | None = None, require_face: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.size = size
        self.detector = detector
        self.padding = padding
        self.cache = cache
        self.require_face = require_face
        self.max_pixels = max_pixels
        self.detections = 0  # detector runs, for tests and benchmarks
        self._detector = FaceDetector.named(detector) if detector != "none" else None

    @classmethod
    def for_config(cls, config: ModelConfig, cache: FaceStore | None = None, **kw) -> "PhotoPreparer":
        """The preparer a model's config describes; ``cache`` keeps its detections."""
        return cls(config.image_size, config.detector, config.face_padding,
                   cache if config.detector != "none" else None, require_face=config.require_face, **kw)

    def faces(self, image: np.ndarray, sha256: str, remember: bool = True) -> list[Face]:
        """Faces in ``image``: from the cache, else detected (and cached when
        ``remember``; a probe that is searched once is not worth a file)."""
        return self._faces(image, sha256, remember)[0]

    def _faces(self, image: np.ndarray, sha256: str, remember: bool) -> tuple[list[Face], bool]:
        """The faces, and whether they were detected now and not cached."""
        cached = self.cache.get(sha256) if self.cache else None
        if cached is not None:
            return [Face.from_dict(f) for f in cached], False
        self.detections += 1
        found = self._detector.detect(image)
        if self.cache and remember:
            self.cache.put(sha256, [f.as_dict() for f in found])
        return found, not remember

    def remember(self, prepared: Prepared) -> None:
        """Cache the detections of a photo prepared with ``remember=False`` (once the
        photo has joined the gallery: a refused enrollment leaves no entry)."""
        if self.cache is not None and prepared.detections is not None:
            self.cache.put(prepared.sha256, list(prepared.detections))

    def prepare_bytes(self, data: bytes, name: object = "<bytes>", *,
                      require_face: bool | None = None, remember: bool = True,
                      face: FaceChoice = None) -> Prepared:
        """The branch input of one face of a photo (``face``, default the largest).
        Raises :class:`ImageError` for unusable files, :class:`NoFaceFound` when a
        face is required (``require_face``, default: as configured) and none is
        found, :class:`NoSuchFace` when the chosen face is not there."""
        return self._prepare(data, name, require_face, remember, face, None)[0]

    def prepare_faces(self, data: bytes, name: object = "<bytes>", *,
                      max_faces: int = DEFAULT_MAX_FACES, remember: bool = False) -> list[Prepared]:
        """The branch inputs of every face of a photo, largest first (at most
        ``max_faces``), from one detection; one ``whole`` input for a model without
        a detector. A face is required (:class:`NoFaceFound`)."""
        return self._prepare(data, name, self._detector is not None, remember, None, max_faces)

    def prepare_degraded(self, data: bytes, name: object,
                         degradations: Sequence[tuple[str, np.random.Generator]]
                         ) -> tuple[Prepared, list[np.ndarray | None]]:
        """The photo's face (as :meth:`prepare_bytes`) and, for each ``(degradation,
        rng)`` of :data:`verifier.degrade.DEGRADATIONS`, the face after that
        degradation of the whole photo, found by the detector and aligned as a query
        of such a photo would be (the face overlapping the original most); ``None``
        where the detector no longer finds it, or the photo had no face. What
        training learns hard photos from."""
        from verifier.degrade import DEGRADATIONS

        image = decode_image(data, name=name, max_pixels=self.max_pixels)
        prepared = self._prepare_image(image, sha256_bytes(data), name, require_face=None,
                                       remember=True, choice=None, every=None)[0]
        if prepared.face is None or self._detector is None:
            return prepared, [None] * len(degradations)
        face = prepared.face
        marks = dict(zip(LANDMARKS, face.landmarks))
        out: list[np.ndarray | None] = []
        for degradation, rng in degradations:
            changed = DEGRADATIONS[degradation](image, rng, face.box, marks)
            scale = changed.shape[1] / image.shape[1]  # low resolution shrinks the photo
            self.detections += 1
            found = self._detector.detect(changed)
            overlaps = [box_overlap(f.box, tuple(v * scale for v in face.box)) for f in found]
            if not overlaps or max(overlaps) < MIN_BOX_OVERLAP:
                out.append(None)
                continue
            again = found[int(np.argmax(overlaps))]
            out.append(align(changed, again.landmarks, self.size, self.padding))
        return prepared, out

    def _prepare(self, data: bytes, name: object, require_face: bool | None, remember: bool,
                 choice: FaceChoice, every: int | None) -> list[Prepared]:
        image = decode_image(data, name=name, max_pixels=self.max_pixels)
        return self._prepare_image(image, sha256_bytes(data), name, require_face, remember, choice, every)

    def _prepare_image(self, image: np.ndarray, digest: str, name: object, require_face: bool | None,
                       remember: bool, choice: FaceChoice, every: int | None) -> list[Prepared]:
        if require_face is None:
            require_face = self.require_face
        size = (int(image.shape[1]), int(image.shape[0]))
        if self._detector is None:
            return [Prepared(resize(image, self.size), FaceStatus.WHOLE, digest, size=size)]
        faces, fresh = self._faces(image, digest, remember)
        found = tuple(f.as_dict() for f in faces) if fresh else None
        if not faces:
            if require_face:
                why = ("this model was trained with --require-face and embeds faces only"
                       if self.require_face else "try a photo where the face is larger, sharper "
                       "and turned toward the camera")
                raise NoFaceFound(f"{name}: no face found ({why})")
            return [Prepared(resize(image, self.size), FaceStatus.NO_FACE, digest, found, size=size)]
        faces = largest_first(faces)
        status = FaceStatus.of(len(faces))
        chosen = range(min(every, len(faces))) if every is not None else [choose_face(faces, choice, name)]
        return [Prepared(align(image, faces[i].landmarks, self.size, self.padding), status, digest,
                         found, faces[i], i, len(faces), size, face_quality(image, faces[i]))
                for i in chosen]

    def face_status(self, path: Path) -> FaceStatus:
        """``face``, ``several_faces`` or ``no_face`` for a photo file, detecting
        only when its content was never seen (no decoding on a cache hit)."""
        data = read_photo_bytes(path)
        digest = sha256_bytes(data)
        cached = self.cache.get(digest) if self.cache else None
        if cached is None:
            image = decode_image(data, name=path, max_pixels=self.max_pixels)
            cached = [f.as_dict() for f in self.faces(image, digest)]
        return FaceStatus.of(len(cached))

    def prepare(self, path: Path) -> Prepared:
        return self.prepare_bytes(read_photo_bytes(path), path)
