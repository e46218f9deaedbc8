"""The loaded verifier: one model version, its threshold, its live index and photo
metadata, opened once and shared by the CLI and the service.

Methods take photo bytes and gallery ids, never paths from a client. Searches and
verifications run in parallel from many threads; writes (enroll, remove, refresh)
are serialised, and each one is committed to the database before the in-memory
index changes, so the database is always the record and the index a view of it.
"""
from __future__ import annotations

import threading
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.files import write_bytes_atomic
from storage.live_index import CatchUp, LiveIndex, open_live_index
from storage.schema import Embedding, Identity, Image
from storage.workspace import Workspace, check_identity_name
from verifier.errors import VerifierError
from verifier.images import image_format, read_header
from verifier.losses import euclidean_distance_np

from .models import LoadedModel, load_model
from .preprocess import Prepared, read_photo_bytes


SEARCH_WINDOW = 50
"""Photos fetched per search at least (``20 * k`` when larger); widened until ``k``
distinct identities are found or the gallery is exhausted."""


class QueryError(VerifierError):
    """A query or verification cannot be answered (no gallery, no threshold)."""


class GalleryEmpty(QueryError):
    """Nothing was embedded with this model yet."""


class NotCalibrated(QueryError):
    """The model has no calibrated threshold and none was given."""


class PhotoNotFound(VerifierError):
    """No gallery photo with that id (or it has no embedding under this model)."""


class IdentityNotFound(VerifierError):
    """No identity of that name in the gallery."""


class EnrollConflict(VerifierError):
    """The same photo is already enrolled under another identity."""


@dataclass
class Match:
    rank: int
    identity: str
    distance: float
    photo: str
    passes: bool | None
    photo_id: int = 0


@dataclass
class QueryResult:
    photo: str
    matches: list[Match] = field(default_factory=list)
    face: str = ""
    error: str | None = None
    model: str = ""
    version: int = 0  # the index version the answer was found in
    chip: np.ndarray | None = field(default=None, repr=False)  # the probe's branch input

    @property
    def unknown(self) -> bool:
        """No identity passes the threshold (or there is no answer at all)."""
        return not any(m.passes for m in self.matches)

    def as_dict(self) -> dict:
        return {"photo": self.photo, "unknown": self.unknown, "face": self.face,
                "error": self.error, "matches": [asdict(m) for m in self.matches]}


@dataclass
class Verification:
    photo_a: str
    photo_b: str
    distance: float
    threshold: float
    same: bool
    model: str
    chips: tuple | None = field(default=None, repr=False)  # the two branch inputs, on request

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


@dataclass(frozen=True)
class Removed:
    """How many gallery photos a removal took out, and the index version after it."""

    photos: int
    version: int


Photo = bytes | int
"""A photo to verify: its bytes, or the id of a gallery photo."""


class Verifier:
    """One model version with its gallery, loaded once. Use :meth:`open`."""

    def __init__(self, ws: Workspace, factory: sessionmaker[Session], loaded: LoadedModel,
                 model_id: int, threshold: float | None) -> None:
        self.ws = ws
        self.factory = factory
        self.loaded = loaded
        self.model_id = model_id
        self.threshold = threshold
        self._index: LiveIndex | None = None
        self._photos: dict[int, gallery.GalleryPhoto] = {}
        self._load_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._dirty = False
        self._state: tuple[int, int] = (-1, -1)

    @classmethod
    def open(cls, ws: Workspace, factory: sessionmaker[Session],
             model: str | None = None) -> "Verifier":
        """Load model version ``model`` (default: the most recent). The index and the
        photo metadata are loaded on first use (verification does not need them)."""
        loaded = load_model(ws, model)
        with factory.begin() as session:
            row = gallery.ensure_model(session, loaded.name, loaded.config, loaded.path)
            model_id, threshold = row.id, row.threshold
        return cls(ws, factory, loaded, model_id, threshold)

    @property
    def model(self) -> str:
        return self.loaded.name

    # -- the gallery in memory ---------------------------------------------------------

    def _fetch(self, ids: np.ndarray) -> np.ndarray:
        with self.factory() as session:
            return gallery.vectors_of(session, ids)

    def _gallery(self) -> LiveIndex:
        if self._index is None:
            with self._load_lock:
                if self._index is None:
                    with self.factory() as session:
                        self._state = gallery.model_state(session, self.model_id)
                        ids = gallery.model_ids(session, self.model_id)
                        self._photos = gallery.embedded_photos(session, self.model_id)
                    index, caught = open_live_index(
                        self.ws.index_path(self.model), model=self.model,
                        dimension=self.loaded.dimension, db_ids=ids, fetch=self._fetch)
                    self._dirty = caught.changed
                    self._index = index
        return self._index

    @property
    def gallery_size(self) -> int:
        """Embedded photos searchable now."""
        return len(self._gallery())

    def refresh(self) -> CatchUp:
        """Pick up what other processes committed (embeddings added or removed) and a
        new calibrated threshold. Cheap when nothing changed: one query of the count
        and the largest id of the model's embeddings."""
        index = self._gallery()
        with self._write_lock:
            with self.factory() as session:
                self.threshold = gallery.get_model(session, self.model).threshold
                state = gallery.model_state(session, self.model_id)
                if state == self._state:
                    return CatchUp()
                ids = gallery.model_ids(session, self.model_id)
                new = np.setdiff1d(ids, index.ids())
                photos = gallery.embedded_photos(session, self.model_id, new)
            self._photos.update(photos)
            caught = index.catch_up(ids, self._fetch)
            live = set(ids.tolist())
            for gone in [i for i in self._photos if i not in live]:
                del self._photos[gone]
            self._state = state
            self._dirty |= caught.changed
            return caught

    def _note_own_write(self) -> None:
        """Record the database state after this object's own write (under the write
        lock), so that :meth:`refresh` does not mistake it for another process's."""
        with self.factory() as session:
            self._state = gallery.model_state(session, self.model_id)
        self._dirty = True

    def save(self) -> bool:
        """Write the index snapshot if anything changed since it was loaded."""
        if self._index is None or not self._dirty:
            return False
        with self._write_lock:
            self._index.save(self.ws.index_path(self.model))
            self._dirty = False
            return True

    def close(self) -> None:
        self.save()

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- photos to vectors ---------------------------------------------------------------

    def prepare(self, data: bytes, name: object = "<bytes>", *, remember: bool = False) -> Prepared:
        """A photo's branch input. A model trained with a face detector requires a
        face (:class:`NoFaceFound`); unusable bytes raise :class:`ImageError`. The
        detection is cached only with ``remember`` (photos that join the gallery),
        so that searches leave nothing behind."""
        preparer = self.loaded.preparer
        return preparer.prepare_bytes(data, name, require_face=preparer.detector != "none",
                                      remember=remember)

    def embed(self, prepared: Sequence[Prepared]) -> np.ndarray:
        if not prepared:
            return np.zeros((0, self.loaded.dimension), np.float32)
        return self.loaded.embed(np.stack([p.pixels for p in prepared]))

    # -- reading -------------------------------------------------------------------------

    def search(self, data: bytes, k: int = 5, name: str = "<bytes>", *,
               keep_chip: bool = False) -> QueryResult:
        """The ``k`` nearest identities of one photo (errors raise); with
        ``keep_chip`` the result holds the aligned face it was searched with."""
        prepared = self.prepare(data, name)
        result = QueryResult(photo=name, face=prepared.status, model=self.model,
                             chip=prepared.pixels if keep_chip else None)
        result.matches, result.version = self.rank(self.embed([prepared])[0], k)
        return result

    def search_many(self, items: Iterable[tuple[str, bytes | Exception]], k: int = 5,
                    batch_size: int = 32) -> Iterable[QueryResult]:
        """Answers for ``(name, bytes)`` items, in order, embedding in batches. An
        item that cannot be used (or an exception in place of its bytes) is answered
        with ``error`` set; the others are still answered."""
        self._require_gallery()
        pending: list[tuple[QueryResult, Prepared | None]] = []

        def flush():
            ready = [(r, p) for r, p in pending if p is not None]
            vectors = self.embed([p for _, p in ready])
            for (result, _), vector in zip(ready, vectors):
                result.matches, result.version = self.rank(vector, k)
            out = [r for r, _ in pending]
            pending.clear()
            return out

        for name, data in items:
            result = QueryResult(photo=name, model=self.model)
            prepared = None
            try:
                if isinstance(data, Exception):
                    raise data
                prepared = self.prepare(data, name)
                result.face = prepared.status
            except VerifierError as exc:
                result.error = str(exc)
            pending.append((result, prepared))
            if sum(p is not None for _, p in pending) >= batch_size:
                yield from flush()
        yield from flush()

    def _require_gallery(self) -> None:
        if not self.gallery_size:
            raise GalleryEmpty(f"the gallery was never embedded with model {self.model!r}; "
                             f"run `verifier embed --data DIR --model {self.model}` first")

    def rank(self, vector: np.ndarray, k: int) -> tuple[list[Match], int]:
        """The ``k`` nearest identities and the index version searched; an
        identity's distance is that of its closest gallery photo."""
        index = self._gallery()
        self._require_gallery()
        threshold = self.threshold
        wanted = min(len(index), max(k * 20, SEARCH_WINDOW))
        while True:
            dist, ids, version = index.search(vector[None, :], wanted)
            photos = self._photos
            best: dict[str, tuple[float, gallery.GalleryPhoto]] = {}
            for d, i in zip(dist[0], ids[0]):
                photo = photos.get(int(i)) if i >= 0 else None
                if photo is None:  # removed between the search and this lookup
                    continue
                if photo.identity not in best or d < best[photo.identity][0]:
                    best[photo.identity] = (float(d), photo)
            size = len(index)
            if len(best) >= k or wanted >= size:
                break
            wanted = min(size, wanted * 4)
        ranked = sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))[:k]
        return [Match(r + 1, name, d, photo.path,
                      None if threshold is None else d <= threshold, photo.image_id)
                for r, (name, (d, photo)) in enumerate(ranked)], version

    def photo_vector(self, photo_id: int) -> np.ndarray:
        """The stored embedding of gallery photo ``photo_id`` under this model."""
        with self.factory() as session:
            blob = session.scalar(select(Embedding.vector).join(Image, Embedding.image_id == Image.id)
                                  .where(Image.id == int(photo_id), Image.status == "ok",
                                         Embedding.model_id == self.model_id))
        if blob is None:
            raise PhotoNotFound(f"no gallery photo {photo_id} embedded with model {self.model!r}")
        return np.frombuffer(blob, dtype=np.float32)

    def face_chip(self, photo_id: int) -> np.ndarray:
        """The branch input of gallery photo ``photo_id`` (the aligned face chip, or
        the resized photo for models without a detector), from its stored file."""
        with self.factory() as session:
            row = gallery.gallery_photo(session, photo_id)
            path = None if row is None else row.path
        if path is None:
            raise PhotoNotFound(f"no gallery photo {photo_id}")
        data = read_photo_bytes(Path(path))
        return self.loaded.preparer.prepare_bytes(data, f"photo {photo_id}", require_face=False).pixels

    def verify(self, a: Photo, b: Photo, *, threshold: float | None = None,
               names: tuple[str, str] = ("<bytes>", "<bytes>"),
               keep_chips: bool = False) -> Verification:
        """Distance between two photos (bytes or gallery photo ids) and the decision
        at ``threshold`` (default: the model's calibrated one); with ``keep_chips``
        the result holds both aligned faces."""
        if threshold is None:
            threshold = self.threshold
        if threshold is None:
            raise NotCalibrated(f"model {self.model!r} has no calibrated threshold yet; run "
                             "`verifier evaluate` once, or pass --threshold")
        prepared = [self.prepare(x, n) for x, n in zip((a, b), names) if not isinstance(x, int)]
        vectors = iter(self.embed(prepared))
        va, vb = (self.photo_vector(x) if isinstance(x, int) else next(vectors) for x in (a, b))
        distance = float(euclidean_distance_np(va, vb))
        label = [f"photo {x}" if isinstance(x, int) else n for x, n in zip((a, b), names)]
        chips = None
        if keep_chips:
            uploaded = iter(p.pixels for p in prepared)
            chips = tuple(self.face_chip(x) if isinstance(x, int) else next(uploaded) for x in (a, b))
        return Verification(label[0], label[1], distance, float(threshold),
                            distance <= threshold, self.model, chips)

    # -- writing -------------------------------------------------------------------------

    def enroll(self, identity: str, data: bytes, *, source: str | None = None) -> Enrolled:
        """Add one photo of ``identity`` (created when new): the bytes are stored
        content-addressed in the workspace, the vector in the database and the live
        index. Enrolling the same bytes again for the same identity changes nothing.
        ``source`` (the upload's file name) is kept with the photo."""
        return self.enroll_many(identity, [(source, data)])[0]

    def enroll_many(self, identity: str, photos: Sequence[tuple[str | None, bytes]]
                    ) -> list[Enrolled]:
        """:meth:`enroll` for several photos of one identity, all or nothing: every
        photo is decoded and checked first (one bad photo refuses the request), the
        vectors come from one batch, and one transaction stores them."""
        check_identity_name(identity)
        prepared = [self.prepare(data, source or "<upload>", remember=True) for source, data in photos]
        vectors = self.embed(prepared)
        index = self._gallery()
        out: list[Enrolled] = []
        with self._write_lock:
            added: list[tuple[int, gallery.GalleryPhoto, np.ndarray]] = []
            with self.factory.begin() as session:
                for (source, data), prep, vector in zip(photos, prepared, vectors):
                    result, photo = self._store(session, identity, source, data, prep, vector)
                    out.append(result)
                    if photo is not None:
                        added.append((result.embedding_id, photo, vector))
            for embedding_id, photo, _ in added:
                self._photos[embedding_id] = photo
            if added:
                version = index.add(np.array([a[0] for a in added]), np.stack([a[2] for a in added]))
                self._note_own_write()
            else:
                version = index.version
        return [Enrolled(e.photo_id, e.embedding_id, e.identity, e.face, e.created, version)
                for e in out]

    def _store(self, session: Session, identity: str, source: str | None, data: bytes,
               prepared: Prepared, vector: np.ndarray
               ) -> tuple[Enrolled, gallery.GalleryPhoto | None]:
        """One photo into the database (and its bytes into the workspace); the
        photo to add to the index, or ``None`` when it was there already."""
        path = self.ws.enrolled_path(prepared.sha256, image_format(data))
        row = session.scalar(select(Image).where(Image.path == str(path)))
        if row is not None and row.identity.name != identity and row.status == "ok":
            raise EnrollConflict(f"this photo is already enrolled as {row.identity.name!r} "
                                 f"(photo {row.id}); remove it there first")
        existing = None if row is None else session.scalar(
            select(Embedding.id).where(Embedding.image_id == row.id,
                                       Embedding.model_id == self.model_id))
        if row is not None and row.status == "ok" and existing is not None:
            return Enrolled(row.id, existing, identity, row.flags or prepared.status, False, 0), None
        if not path.is_file():
            write_bytes_atomic(path, data)
        ident = gallery.identity_id(session, identity)
        w, h = read_header(data)
        flags = prepared.status if prepared.status != "face" else None
        name = (source or "")[-255:] or None
        if row is None:
            row = Image(path=str(path), sha256=prepared.sha256, identity_id=ident, width=w,
                        height=h, status="ok", flags=flags, source=name)
            session.add(row)
        else:  # removed before, or enrolled under another model only
            row.identity_id, row.status, row.flags, row.source = ident, "ok", flags, name
        session.flush()
        if existing is None:
            emb = Embedding(image_id=row.id, model_id=self.model_id,
                            vector=gallery.vector_to_bytes(vector))
            session.add(emb)
            session.flush()
            existing = emb.id
        photo = gallery.GalleryPhoto(row.id, str(path), prepared.sha256, identity)
        return Enrolled(row.id, existing, identity, prepared.status, True, 0), photo

    def remove_photo(self, photo_id: int) -> Removed:
        """Remove gallery photo ``photo_id`` (its embeddings under every model; an
        enrolled copy is deleted, a folder's file is left alone)."""
        return self._remove(select(Image).where(Image.id == int(photo_id), Image.status == "ok"),
                            lambda: PhotoNotFound(f"no gallery photo {photo_id}"))

    def remove_identity(self, name: str) -> Removed:
        """Remove every photo of identity ``name``."""
        return self._remove(select(Image).join(Identity, Image.identity_id == Identity.id)
                            .where(Identity.name == name, Image.status == "ok"),
                            lambda: IdentityNotFound(f"no identity {name!r} in the gallery"))

    def _remove(self, rows_query, not_found) -> Removed:
        index = self._gallery()
        with self._write_lock:
            with self.factory.begin() as session:
                rows = list(session.scalars(rows_query))
                if not rows:
                    raise not_found()
                image_ids = [r.id for r in rows]
                mine = session.scalars(select(Embedding.id).where(
                    Embedding.image_id.in_(image_ids), Embedding.model_id == self.model_id)).all()
                gallery.delete_embeddings_of(session, image_ids)
                session.execute(update(Image).where(Image.id.in_(image_ids))
                                .values(status="removed"))
                enrolled = [r.path for r in rows if self.ws.is_enrolled(r.path)]
            for path in enrolled:
                try:
                    self.ws.root.joinpath(path).unlink()
                except OSError:
                    pass
            # the metadata of removed ids stays until refresh(): a search that began
            # before the removal may still look them up
            version = index.remove(np.asarray(mine, np.int64))
            self._note_own_write()
            return Removed(len(image_ids), version)
