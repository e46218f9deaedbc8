"""The errors of the loaded :class:`~jobs.live.Verifier`'s questions: the front ends map
each to its answer (an exit status, an HTTP status with a stable ``code``)."""
from __future__ import annotations

from storage.errors import AlreadyEnrolled
from verifier.errors import VerifierError


class QueryError(VerifierError):
    """A query or verification cannot be answered (no gallery, no threshold)."""


class GalleryEmpty(QueryError):
    """Nothing was embedded with this model yet."""


class NotCalibrated(QueryError):
    """The model has no calibrated threshold and none was given."""


class PhotoNotFound(VerifierError):
    """No gallery photo with that id (or it has no embedding under this model)."""


class PhotoFileMissing(PhotoNotFound):
    """A gallery photo whose file is gone from the server's disk."""


class IdentityNotFound(VerifierError):
    """No identity of that name in the gallery."""


EnrollConflict = AlreadyEnrolled
"""The same photo is already enrolled under another identity (a storage error)."""
