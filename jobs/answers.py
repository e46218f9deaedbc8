"""What the loaded :class:`~jobs.live.Verifier` answers: ranked matches, the faces of a
searched photo, verifications, enrollments and removals (``as_dict`` for JSON)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from verifier.defaults import DEFAULT_MIN_QUALITY
from verifier.detection import DetectedFace
from verifier.preparation import Prepared

LARGEST = "largest"
"""The ``face`` of an enrollment that asks for the photo's largest face."""


@dataclass
class Match:
    rank: int
    identity: str
    distance: float
    photo: str
    passes: bool | None
    photo_id: int = 0


@dataclass(frozen=True)
class FaceAnswer(DetectedFace):
    """One face of a searched photo (box, score, landmarks, and with ``keep_chip``
    the aligned face) and its ranked identities."""

    matches: tuple[Match, ...] = ()
    reason: str | None = None
    """Why the face gets no name whatever its distances: ``poor_quality`` (under
    the verifier's quality floor)."""

    @property
    def unknown(self) -> bool:
        """No identity passes the threshold (or the face is too poor to judge)."""
        return self.reason is not None or not any(m.passes for m in self.matches)

    def as_dict(self) -> dict:
        return super().as_dict() | {"unknown": self.unknown, "reason": self.reason,
                                    "matches": [asdict(m) for m in self.matches]}


POOR_QUALITY = "poor_quality"
"""The ``reason`` of a face under the quality floor: answered unknown, never named."""


def judged(quality, min_quality: float) -> str | None:
    """``POOR_QUALITY`` for a face under ``min_quality`` (a whole photo is not rated)."""
    return POOR_QUALITY if quality is not None and quality.score < min_quality else None


@dataclass
class QueryResult:
    """The answer for one photo: ``faces`` holds every face, largest first; the
    top-level ``matches``, ``face`` and ``chip`` describe the largest face."""

    photo: str
    matches: list[Match] = field(default_factory=list)
    face: str = ""
    error: str | None = None
    model: str = ""
    version: int = 0  # the index version the answer was found in
    chip: np.ndarray | None = field(default=None, repr=False)  # the probe's branch input
    faces: list[FaceAnswer] = field(default_factory=list)
    width: int = 0
    height: int = 0

    @property
    def unknown(self) -> bool:
        """No identity passes the threshold for the largest face (or there is no
        answer, or that face is too poor to judge)."""
        return self.reason is not None or not any(m.passes for m in self.matches)

    @property
    def reason(self) -> str | None:
        """The largest face's :attr:`FaceAnswer.reason`."""
        return self.faces[0].reason if self.faces else None

    def as_dict(self) -> dict:
        return {"photo": self.photo, "unknown": self.unknown, "reason": self.reason, "face": self.face,
                "error": self.error, "matches": [asdict(m) for m in self.matches],
                "width": self.width, "height": self.height,
                "faces": [f.as_dict() for f in self.faces]}

    def answer(self, faces: Sequence[Prepared], ranked: Sequence[list[Match]],
               keep_chip: bool = False, min_quality: float = DEFAULT_MIN_QUALITY) -> None:
        """Fill in the answer from a photo's prepared faces and their ranked matches;
        a face under ``min_quality`` keeps its matches, none of them passing."""
        self.faces = []
        for p, m in zip(faces, ranked):
            reason = judged(p.quality, min_quality)
            matches = tuple(replace(x, passes=False) for x in m) if reason else tuple(m)
            self.faces.append(FaceAnswer.of(p.face, p.pixels if keep_chip else None, p.size,
                                            p.quality, matches=matches, reason=reason))
        ranked = [list(f.matches) for f in self.faces]
        first = faces[0]
        self.face, (self.width, self.height) = first.status.value, first.size
        self.matches, self.chip = list(ranked[0]), self.faces[0].chip


@dataclass
class Verification:
    """``faces_a``/``faces_b``: faces found in each uploaded photo (``None`` for a
    gallery photo id or a model without a detector); ``face_a``/``face_b``: the
    one compared (0 is the largest) and ``box_a``/``box_b`` where it is."""

    photo_a: str
    photo_b: str
    distance: float
    threshold: float
    same: bool
    model: str
    chips: tuple | None = field(default=None, repr=False)  # the two branch inputs, on request
    faces_a: int | None = None
    faces_b: int | None = None
    face_a: int = 0
    face_b: int = 0
    box_a: list[int] | None = None
    box_b: list[int] | None = None
    reason: str | None = None
    """``poor_quality`` when a compared face is under the quality floor: ``same``
    is then false whatever the distance (the photos cannot be told apart)."""
    quality_a: float | None = None
    quality_b: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "chips"}


@dataclass(frozen=True)
class Enrolled:
    """The outcome of enrolling one photo; ``created`` is false when the same bytes
    were already enrolled for that identity (nothing changed)."""

    photo_id: int
    embedding_id: int
    identity: str
    face: str
    created: bool
    version: int
    box: list[int] | None = None
    """The face enrolled, when the model has a detector."""
    face_index: int = 0
    """Its position among the photo's faces, largest first (each face of a group
    photo is a gallery entry of its own)."""


@dataclass(frozen=True)
class Removed:
    """How many gallery photos a removal took out, and the index version after it."""

    photos: int
    version: int


Photo = bytes | int
"""A photo to verify: its bytes, or the id of a gallery photo."""
