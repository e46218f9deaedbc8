"""The query and verify use cases: who in the gallery does a photo look like, and do
two photos show the same person."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.errors import ModelNotFound
from storage.index import is_exact, load_index, search
from storage.workspace import Workspace
from verifier.errors import VerifierError
from verifier.images import is_image_file
from verifier.losses import euclidean_distance_np

from .embed import index_path
from .models import LoadedModel, load_model
from .preprocess import Prepared, read_photo_bytes


class QueryError(VerifierError):
    """A query or verification cannot be answered (no gallery, no threshold)."""


@dataclass
class Match:
    rank: int
    identity: str
    distance: float
    photo: str
    passes: bool | None


@dataclass
class QueryResult:
    photo: str
    matches: list[Match] = field(default_factory=list)
    face: str = ""
    error: str | None = None

    @property
    def unknown(self) -> bool:
        """No identity passes the threshold (or there is no answer at all)."""
        return not any(m.passes for m in self.matches)

    def as_dict(self) -> dict:
        return {"photo": self.photo, "unknown": self.unknown, "face": self.face,
                "error": self.error, "matches": [asdict(m) for m in self.matches]}


def expand_photos(items: Sequence[str]) -> list[str]:
    """Photos named on the command line; a folder stands for every photo inside it."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if item != "-" and path.is_dir():
            out += [str(p) for p in sorted(path.rglob("*")) if is_image_file(p)]
        else:
            out.append(item)
    return out


def prepare_input(loaded: LoadedModel, item: str, stdin: BinaryIO | None = None) -> Prepared:
    """Read one photo (``-`` = standard input) with the model's preprocessing.
    A model trained with a face detector requires a face here."""
    preparer = loaded.preparer
    if item == "-":
        data, name = (stdin or sys.stdin.buffer).read(), "<stdin>"
    else:
        data, name = read_photo_bytes(Path(item)), item
    return preparer.prepare_bytes(data, name, require_face=preparer.detector != "none")


class Gallery:
    """A model's index and photo metadata, loaded once per invocation."""

    def __init__(self, ws: Workspace, factory: sessionmaker[Session], loaded: LoadedModel) -> None:
        with factory() as session:
            try:
                model_row = gallery.get_model(session, loaded.name)
            except ModelNotFound:
                model_row = None
            ids = gallery.model_ids(session, model_row.id) if model_row else np.zeros(0)
            if model_row is None or not len(ids):
                raise QueryError(f"the gallery was never embedded with model {loaded.name!r}; "
                                 f"run `verifier embed --data DIR --model {loaded.name}` first")
            self.photos = gallery.embedded_photos(session, model_row.id)
            self.threshold = model_row.threshold
        path = index_path(ws, loaded.name)
        self.index, info = load_index(path, model=loaded.name, dimension=loaded.dimension, ids=ids)
        self.exact = is_exact(info.factory)

    def rank(self, vector: np.ndarray, k: int) -> list[Match]:
        """The ``k`` nearest identities; an identity's distance is that of its
        closest gallery photo."""
        wanted = min(self.index.ntotal, max(k * 20, 50))
        while True:
            dist, ids = search(self.index, vector[None, :], wanted, exact=self.exact)
            best: dict[str, tuple[float, str]] = {}
            for d, i in zip(dist[0], ids[0]):
                if i < 0:
                    continue
                photo = self.photos[int(i)]
                if photo.identity not in best or d < best[photo.identity][0]:
                    best[photo.identity] = (float(d), photo.path)
            if len(best) >= k or wanted >= self.index.ntotal:
                break
            wanted = min(self.index.ntotal, wanted * 4)
        ranked = sorted(best.items(), key=lambda kv: kv[1][0])[:k]
        return [Match(r + 1, name, d, path,
                      None if self.threshold is None else d <= self.threshold)
                for r, (name, (d, path)) in enumerate(ranked)]


def query(ws: Workspace, factory: sessionmaker[Session], photos: Sequence[str], *, k: int = 5,
          model: str | None = None, stdin: BinaryIO | None = None) -> list[QueryResult]:
    """Rank gallery identities for each photo. A photo that cannot be used gets a
    result with ``error`` set; the others are answered."""
    loaded = load_model(ws, model)
    store = Gallery(ws, factory, loaded)
    results, batch, where = [], [], []
    for item in expand_photos(photos):
        result = QueryResult(photo="<stdin>" if item == "-" else item)
        results.append(result)
        try:
            prepared = prepare_input(loaded, item, stdin)
        except VerifierError as exc:
            result.error = str(exc)
            continue
        result.face = prepared.status
        batch.append(prepared.pixels)
        where.append(result)
    if batch:
        vectors = loaded.embed(np.stack(batch))
        for result, vector in zip(where, vectors):
            result.matches = store.rank(vector, k)
    return results


def write_csv(results: Sequence[QueryResult], path: Path) -> None:
    """One row per photo and rank (one row with the error for a failed photo)."""
    import csv
    import io

    from storage.files import write_text_atomic

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["photo", "rank", "identity", "distance", "gallery_photo", "passes", "unknown", "error"])
    for r in results:
        for m in r.matches or [None]:
            w.writerow([r.photo, m.rank if m else "", m.identity if m else "",
                        f"{m.distance:.6f}" if m else "", m.photo if m else "",
                        "" if m is None or m.passes is None else int(m.passes), int(r.unknown),
                        r.error or ""])
    write_text_atomic(path, buf.getvalue())


@dataclass
class Verification:
    photo_a: str
    photo_b: str
    distance: float
    threshold: float
    same: bool
    model: str

    def as_dict(self) -> dict:
        return asdict(self)


def verify(ws: Workspace, factory: sessionmaker[Session], photo_a: str, photo_b: str, *,
           model: str | None = None, threshold: float | None = None,
           stdin: BinaryIO | None = None) -> Verification:
    """Distance between two photos and the decision at the model's threshold."""
    if photo_a == "-" and photo_b == "-":
        raise QueryError("only one of the two photos can come from standard input")
    loaded = load_model(ws, model)
    if threshold is None:
        with factory() as session:
            try:
                threshold = gallery.get_model(session, loaded.name).threshold
            except ModelNotFound:
                threshold = None
        if threshold is None:
            raise QueryError(f"model {loaded.name!r} has no calibrated threshold yet; run "
                             "`verifier evaluate` once, or pass --threshold")
    a = prepare_input(loaded, photo_a, stdin)
    b = prepare_input(loaded, photo_b, stdin)
    va, vb = loaded.embed(np.stack([a.pixels, b.pixels]))
    distance = float(euclidean_distance_np(va, vb))
    return Verification("<stdin>" if photo_a == "-" else photo_a,
                        "<stdin>" if photo_b == "-" else photo_b,
                        distance, float(threshold), distance <= threshold, loaded.name)
