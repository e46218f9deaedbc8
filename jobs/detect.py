"""The detect use case: every face of each photo named on the command line, without a
model or the gallery (:mod:`verifier.detection` finds them)."""
from __future__ import annotations

from typing import BinaryIO, Iterator, Sequence

from verifier.detection import Detection, detect_faces
from verifier.errors import VerifierError

from .photos import read_items


def detect_many(items: Sequence[str], *, stdin: BinaryIO | None = None,
                **options) -> Iterator[Detection]:
    """:func:`detect_faces` for photos named on the command line (files, folders,
    ``-``), in order; a photo that cannot be read is answered with ``error`` set."""
    for name, data in read_items(items, stdin):
        try:
            if isinstance(data, Exception):
                raise data
            yield detect_faces(data, name, **options)
        except VerifierError as exc:
            yield Detection(name, error=str(exc))
