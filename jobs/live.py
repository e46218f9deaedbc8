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
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.errors import AlreadyEnrolled
from storage.files import write_bytes_atomic
from storage.follower import CatchUp, Follower
from storage.live_index import LiveIndex
from storage.gallery import identity_name
from storage.workspace import Workspace
from verifier.defaults import DEFAULT_MAX_FACES
from verifier.errors import ImageError, VerifierError
from verifier.images import image_format, read_header
from verifier.losses import euclidean_distance_np

from .models import LoadedModel, load_model

if TYPE_CHECKING:
    from .detect import Detection
from .preprocess import Prepared, read_photo_bytes


SEARCH_WINDOW = 50
"""Photos fetched per search at least (``20 * k`` when larger); widened until ``k``
distinct identities are found, the gallery is exhausted or :data:`SEARCH_LIMIT`."""
SEARCH_LIMIT = 10_000
"""The most photos one search looks at: a ``k`` above the gallery's number of people
gets the people found among them, not a walk over the whole index."""


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

    def __init__(self, ws: Workspace, sessions: sessionmaker[Session], loaded: LoadedModel,
                 model_id: int, threshold: float | None) -> None:
        self.ws = ws
        self.sessions = sessions
        self.loaded = loaded
        self.model_id = model_id
        self.threshold = threshold
        self.follower = Follower(sessions, ws.index_path(loaded.name), model=loaded.name,
                                 model_id=model_id, dimension=loaded.dimension)
        # writes, loading and following the log, one at a time; searches run beside them
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, ws: Workspace, sessions: sessionmaker[Session],
             model: str | None = None, *, max_pixels: int | None = None) -> "Verifier":
        """Load model version ``model`` (default: the most recent). The index and the
        photo metadata are loaded on first use (verification does not need them).
        ``max_pixels`` lowers the largest photo decoded (the service's own limit)."""
        loaded = load_model(ws, model)
        if max_pixels is not None:
            loaded.preparer.max_pixels = max_pixels
        with sessions.begin() as session:
            row = gallery.ensure_model(session, loaded.name, loaded.config, loaded.path)
            model_id, threshold = row.id, row.threshold
        return cls(ws, sessions, loaded, model_id, threshold)

    @property
    def model(self) -> str:
        return self.loaded.name

    # -- the gallery in memory ---------------------------------------------------------

    def _gallery(self) -> LiveIndex:
        if self.follower.index is None:
            with self._write_lock:
                if self.follower.index is None:
                    self.follower.load()
        return self.follower.index

    @property
    def _photos(self) -> dict[int, gallery.GalleryPhoto]:
        return self.follower.photos

    @property
    def gallery_size(self) -> int:
        """Embedded photos searchable now."""
        return len(self._gallery())

    def refresh(self) -> CatchUp:
        """Pick up what other processes committed (every gallery change logged after
        the last one applied) and a new calibrated threshold. Cheap when nothing
        changed: one indexed query of the change log."""
        self._gallery()
        with self._write_lock:
            with self.sessions() as session:
                self.threshold = gallery.get_model(session, self.model).threshold
            return self.follower.catch_up()

    def lag(self) -> "gallery.changes.Lag":
        """Gallery changes not applied yet, and the age of the oldest."""
        return self.follower.lag()

    def save(self) -> bool:
        """Write the index snapshot if anything changed since it was loaded."""
        with self._write_lock:
            return self.follower.save()

    def close(self) -> None:
        self.save()

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- photos to vectors ---------------------------------------------------------------

    def prepare(self, data: bytes, name: object = "<bytes>", *, remember: bool = False) -> Prepared:
        """A photo's branch input. A photo given one at a time (a probe, an
        enrollment) must show a face when the model has a detector
        (:class:`NoFaceFound`: the caller can send another photo), whereas a folder
        scan follows the model's ``require_face`` and embeds a faceless photo whole,
        flagged ``no_face``. Unusable bytes raise :class:`ImageError`. The detection
        is cached only with ``remember``; enrollment caches it after its commit
        (:meth:`PhotoPreparer.remember`), so that searches and refusals leave nothing
        behind."""
        preparer = self.loaded.preparer
        return preparer.prepare_bytes(data, name, require_face=preparer.detector != "none",
                                      remember=remember)

    def detect(self, data: bytes, name: str = "<bytes>", *, chips: bool = False,
               max_faces: int = DEFAULT_MAX_FACES) -> "Detection":
        """Every face of a photo (largest first) with box, score and landmarks, and
        with ``chips`` the aligned face this model would embed; the gallery is not
        touched and nothing is cached."""
        from .detect import detect_faces

        preparer = self.loaded.preparer
        return detect_faces(data, name, max_faces=max_faces,
                            chip_size=preparer.size if chips else None, padding=preparer.padding,
                            max_pixels=preparer.max_pixels)

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
        wanted = min(len(index), SEARCH_LIMIT, max(k * 20, SEARCH_WINDOW))
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
            if len(best) >= k or wanted >= min(size, SEARCH_LIMIT):
                break
            wanted = min(size, SEARCH_LIMIT, wanted * 4)
        ranked = sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))[:k]
        return [Match(r + 1, name, d, photo.path,
                      None if threshold is None else d <= threshold, photo.image_id)
                for r, (name, (d, photo)) in enumerate(ranked)], version

    def photo_vector(self, photo_id: int) -> np.ndarray:
        """The stored embedding of gallery photo ``photo_id`` under this model."""
        with self.sessions() as session:
            vector = gallery.photo_vector(session, photo_id, self.model_id)
        if vector is None:
            raise PhotoNotFound(f"no gallery photo {photo_id} embedded with model {self.model!r}")
        return vector

    def face_chip(self, photo_id: int) -> np.ndarray:
        """The branch input of gallery photo ``photo_id`` (the aligned face chip, or
        the resized photo for models without a detector), from its stored file."""
        with self.sessions() as session:
            row = gallery.gallery_photo(session, photo_id)
            path = None if row is None else row.path
        if path is None:
            raise PhotoNotFound(f"no gallery photo {photo_id}")
        try:
            data = read_photo_bytes(Path(path))
        except ImageError:  # named by its id: a client never sees the server's paths
            raise PhotoFileMissing(f"the file of gallery photo {photo_id} is gone; "
                                   "run `verifier doctor` on the server") from None
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
        vectors come from one batch, and one transaction stores them. A refusal
        part-way (a conflict on the third photo) leaves no file and no cached
        detection behind."""
        identity = identity_name(identity)
        prepared = [self.prepare(data, source or "<upload>") for source, data in photos]
        vectors = self.embed(prepared)
        new = [gallery.NewPhoto(str(self.ws.enrolled_path(p.sha256, image_format(data))), p.sha256,
                                *read_header(data), p.status, source, vector)
               for (source, data), p, vector in zip(photos, prepared, vectors)]
        self._gallery()
        with self._write_lock:
            written = [Path(n.path) for n, (_, data) in zip(new, photos) if _write_new(Path(n.path), data)]
            try:
                done = gallery.commit(self.sessions, lambda session: [
                    gallery.enroll(session, self.model_id, identity, n) for n in new])
            except BaseException:
                self._unlink_unreferenced(written)
                raise
            added = [(o.embedding_id, o.photo, n.vector) for o, n in zip(done.result, new) if o.created]
            self.follower.apply_own(done.changes, added, [])
            version = self.follower.index.version
        for outcome, p in zip(done.result, prepared):
            if outcome.created:
                self.loaded.preparer.remember(p)
        return [Enrolled(o.photo_id, o.embedding_id, identity, o.face, o.created, version)
                for o in done.result]

    def _unlink_unreferenced(self, paths: list[Path]) -> None:
        """Delete files this process wrote for a refused enrollment, unless another
        writer committed a photo at the same content address meanwhile."""
        if not paths:
            return
        with self.sessions() as session:
            kept = gallery.stored_paths(session, [str(p) for p in paths])
        for path in paths:
            if str(path) not in kept:
                path.unlink(missing_ok=True)

    def remove_photo(self, photo_id: int) -> Removed:
        """Remove gallery photo ``photo_id`` (its embeddings under every model; an
        enrolled copy, its upload name and its cached detections are deleted, a
        folder's file is left alone)."""
        return self._remove(lambda session: [int(photo_id)] if gallery.gallery_photo(session, photo_id)
                            else [], lambda: PhotoNotFound(f"no gallery photo {photo_id}"))

    def remove_identity(self, name: str) -> Removed:
        """Remove every photo of identity ``name``."""
        return self._remove(lambda session: gallery.photos_of(session, name),
                            lambda: IdentityNotFound(f"no identity {name!r} in the gallery"))

    def _remove(self, find, not_found) -> Removed:
        self._gallery()
        with self._write_lock:
            done = gallery.commit(self.sessions, lambda session: gallery.remove_photos(
                session, find(session), self.ws.is_enrolled))
            removed = done.result
            if not removed:
                raise not_found()
            self.follower.apply_own(done.changes, [], [p.embeddings[self.model_id] for p in removed
                                                       if self.model_id in p.embeddings])
            version = self.follower.index.version
        for photo in removed:
            self.ws.forget(photo.path, photo.sha256)
        return Removed(len(removed), version)

    def rename_identity(self, old: str, new: str, *, merge: bool = False) -> int:
        """Rename person ``old`` to ``new`` (merging into an existing ``new`` only
        with ``merge``); returns the photos that now carry the new name."""
        self._gallery()
        with self._write_lock:
            moved = rename_identity(self.sessions, old, new, merge=merge)
            # the metadata of every photo of the person changed: follow the log now
            self.follower.catch_up()
        return moved


def rename_identity(sessions: sessionmaker[Session], old: str, new: str, *,
                    merge: bool = False) -> int:
    """Rename person ``old`` to ``new`` in the gallery (every server follows through
    the change log); an existing ``new`` is merged into only with ``merge``
    (:class:`GalleryConflict` otherwise). Returns the photos renamed."""
    moved = gallery.transaction(sessions, lambda session: gallery.rename_identity(
        session, old, new, merge=merge))
    if not moved:
        raise IdentityNotFound(f"no identity {identity_name(old)!r} in the gallery")
    return moved


def _write_new(path: Path, data: bytes) -> bool:
    """Store ``data`` at content address ``path`` unless it is there; whether it was written."""
    if path.is_file():
        return False
    write_bytes_atomic(path, data)
    return True
