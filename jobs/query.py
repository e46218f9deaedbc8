"""The query and verify commands' use cases: read photos named on the command line
(files, folders, ``-`` for standard input) and ask the loaded :class:`Verifier`."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from storage.workspace import Workspace
from verifier.defaults import DEFAULT_K, DEFAULT_MAX_FACES, DEFAULT_MIN_QUALITY

from .answers import QueryResult, Verification
from .errors import QueryError
from .live import Verifier
from .photos import STDIN, read_items, read_one


def query(ws: Workspace, sessions: sessionmaker[Session], photos: Sequence[str], *, k: int = DEFAULT_K,
          model: str | None = None, stdin: BinaryIO | None = None,
          max_faces: int = DEFAULT_MAX_FACES,
          min_quality: float = DEFAULT_MIN_QUALITY) -> Iterator[QueryResult]:
    """Rank gallery identities for every face of each photo, in order. A photo that
    cannot be used gets a result with ``error`` set; the others are answered."""
    verifier = Verifier.open(ws, sessions, model, min_quality=min_quality)
    return verifier.search_many(read_items(photos, stdin), k, max_faces=max_faces)


def write_csv(results: Sequence[QueryResult], path: Path) -> None:
    """One row per photo, face and rank (one row with the error for a failed
    photo); ``face`` is the face's position, largest first, ``box`` its
    ``left top width height``."""
    import csv
    import io

    from storage.files import write_text_atomic

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["photo", "face", "box", "rank", "identity", "distance", "gallery_photo", "passes",
                "unknown", "error"])
    for r in results:
        for i, face in enumerate(r.faces or [None]):
            for m in (face.matches if face else None) or [None]:
                w.writerow([r.photo, "" if face is None else i,
                            "" if face is None else " ".join(map(str, face.box)),
                            m.rank if m else "", m.identity if m else "",
                            f"{m.distance:.6f}" if m else "", m.photo if m else "",
                            "" if m is None or m.passes is None else int(m.passes),
                            int(face.unknown if face else r.unknown), r.error or ""])
    write_text_atomic(path, buf.getvalue())


def verify(ws: Workspace, sessions: sessionmaker[Session], photo_a: str, photo_b: str, *,
           model: str | None = None, threshold: float | None = None,
           stdin: BinaryIO | None = None, face_a: int = 0, face_b: int = 0,
           min_quality: float = DEFAULT_MIN_QUALITY) -> Verification:
    """Distance between two photo files (or ``-``) and the decision at the model's
    threshold; ``face_a``/``face_b`` choose a face of each (0 is the largest)."""
    if photo_a == STDIN and photo_b == STDIN:
        raise QueryError("only one of the two photos can come from standard input")
    verifier = Verifier.open(ws, sessions, model, min_quality=min_quality)
    (name_a, a), (name_b, b) = read_one(photo_a, stdin), read_one(photo_b, stdin)
    return verifier.verify(a, b, threshold=threshold, names=(name_a, name_b), face_a=face_a,
                           face_b=face_b)

__all__ = ["QueryError", "QueryResult", "Verification", "query", "verify", "write_csv"]
