"""Named exceptions raised by the verifier library.

Every message says what the user can do next; the CLI shows it without a traceback.
"""
from __future__ import annotations


class VerifierError(Exception):
    """Base class of every error the library raises on purpose."""


class ImageError(VerifierError):
    """A file could not be used as a photo (``reason`` is a short machine-readable code)."""

    def __init__(self, path: object, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        text = f"{path}: {reason}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class DatasetError(VerifierError):
    """A dataset folder cannot be used (missing, empty, too few identities)."""


class ProtocolError(VerifierError):
    """A pair protocol cannot be built from the given photos."""


class BackboneError(VerifierError):
    """A backbone name or weights source is unknown or unusable."""


class WeightsDownloadError(BackboneError):
    """Pretrained weights could not be downloaded (typically: no internet)."""


class MetricError(VerifierError):
    """A metric is undefined for its input (for example a single class)."""


class NoFaceFound(VerifierError):
    """The face detector found no face in a photo."""


class DetectorUnavailable(VerifierError):
    """The face detector cannot run (its package is missing or broken): a setup
    error that stops a job, never a photo without a face."""


class SeveralFaces(VerifierError):
    """A photo holds several faces where one must be chosen (enrolling it): the
    caller names the face, or asks for the largest."""

    def __init__(self, message: str, boxes: list[list[int]], photo: int = 0) -> None:
        super().__init__(message)
        self.boxes = boxes  # [left, top, width, height] of each face, largest first
        self.photo = photo  # the photo's position among those sent together


class NoSuchFace(VerifierError):
    """A face was asked for by its position (or box) and the photo has no such face."""


class PoorQuality(VerifierError):
    """A face is below the quality an operation requires (enrolling it): the
    message says why ("face 38 px wide", "blurred")."""

    def __init__(self, message: str, score: float, reasons: list[str]) -> None:
        super().__init__(message)
        self.score = score
        self.reasons = reasons
