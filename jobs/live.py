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
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery, models
from storage.files import write_bytes_atomic
from storage.follower import CatchUp, Follower
from storage.gallery import identity_name
from storage.live_index import LiveIndex
from storage.workspace import Workspace
from verifier.defaults import DEFAULT_EMBED_BATCH_SIZE, DEFAULT_K, DEFAULT_MAX_FACES, DEFAULT_MIN_QUALITY
from verifier.errors import ImageError, NoSuchFace, SeveralFaces, VerifierError
from verifier.faces import Face, largest_first
from verifier.images import image_format, read_header, read_photo_bytes
from verifier.losses import euclidean_distance_np
from verifier.preparation import FaceChoice, Prepared
from verifier.quality import require_quality

from .answers import LARGEST, Enrolled, Match, Photo, QueryResult, Removed, Verification, judged
from .errors import GalleryEmpty, IdentityNotFound, NotCalibrated, PhotoFileMissing, PhotoNotFound
from .models import LoadedModel, load_model
from .ranking import rank_identities

if TYPE_CHECKING:
    from verifier.detection import Detection


class Verifier:
    """One model version with its gallery, loaded once. Use :meth:`open`."""

    def __init__(self, ws: Workspace, sessions: sessionmaker[Session], loaded: LoadedModel,
                 model_id: int, threshold: float | None, min_quality: float = DEFAULT_MIN_QUALITY) -> None:
        self.ws = ws
        self.sessions = sessions
        self.loaded = loaded
        self.model_id = model_id
        self.threshold = threshold
        self.follower = Follower(sessions, ws.index_path(loaded.name), model=loaded.name,
                                 model_id=model_id, dimension=loaded.dimension)
        self.min_quality = min_quality
        """The face quality a name needs: an enrollment under it is refused
        (:class:`PoorQuality`), a searched face under it is answered unknown."""
        # writes, loading and following the log, one at a time; searches run beside them
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, ws: Workspace, sessions: sessionmaker[Session],
             model: str | None = None, *, max_pixels: int | None = None,
             threads: int | None = None, loaded: LoadedModel | None = None,
             min_quality: float = DEFAULT_MIN_QUALITY) -> "Verifier":
        """Load model version ``model`` (default: the most recent), or use ``loaded``,
        one loaded already. The index and the photo metadata are loaded on first use
        (verification does not need them). ``max_pixels`` lowers the largest photo
        decoded (the service's own limit); ``threads``: the model's intra-op threads
        (default: every core); ``min_quality``: :attr:`min_quality`."""
        loaded = loaded or load_model(ws, model, threads=threads)
        if max_pixels is not None:
            loaded.preparer.max_pixels = max_pixels
        with sessions.begin() as session:
            row = models.ensure_model(session, loaded.name, loaded.config.as_dict(), loaded.path)
            model_id, threshold = row.id, row.threshold
        return cls(ws, sessions, loaded, model_id, threshold, min_quality)

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
                self.threshold = models.get_model(session, self.model).threshold
            return self.follower.catch_up()

    @property
    def seq(self) -> int:
        """The last gallery change applied to the index in memory."""
        return self.follower.seq

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

    def prepare(self, data: bytes, name: object = "<bytes>", *, remember: bool = False,
                face: FaceChoice = None) -> Prepared:
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
                                      remember=remember, face=face)

    def prepare_faces(self, data: bytes, name: object = "<bytes>", *,
                      max_faces: int = DEFAULT_MAX_FACES, remember: bool = False) -> list[Prepared]:
        """The branch inputs of every face of a photo, largest first (a face is
        required; see :meth:`PhotoPreparer.prepare_faces`)."""
        return self.loaded.preparer.prepare_faces(data, name, max_faces=max_faces, remember=remember)

    def detect(self, data: bytes, name: str = "<bytes>", *, chips: bool = False,
               max_faces: int = DEFAULT_MAX_FACES) -> "Detection":
        """Every face of a photo (largest first) with box, score and landmarks, and
        with ``chips`` the aligned face this model would embed; the gallery is not
        touched and nothing is cached."""
        from verifier.detection import detect_faces

        preparer = self.loaded.preparer
        return detect_faces(data, name, max_faces=max_faces,
                            chip_size=preparer.size if chips else None, padding=preparer.padding,
                            max_pixels=preparer.max_pixels, detector=preparer.face_detector)

    def embed(self, prepared: Sequence[Prepared]) -> np.ndarray:
        """The vectors of prepared faces, in one forward pass."""
        if not prepared:
            return np.zeros((0, self.loaded.dimension), np.float32)
        return self.loaded.embed(np.stack([p.pixels for p in prepared]))

    # -- reading -------------------------------------------------------------------------

    def search(self, data: bytes, k: int = DEFAULT_K, name: str = "<bytes>", *,
               keep_chip: bool = False, max_faces: int = DEFAULT_MAX_FACES) -> QueryResult:
        """The ``k`` nearest identities of every face of one photo (up to
        ``max_faces``, largest first, one batched forward pass); errors raise. With
        ``keep_chip`` each face holds the aligned face it was searched with."""
        faces = self.prepare_faces(data, name, max_faces=max_faces)
        result = QueryResult(photo=name, model=self.model)
        ranked, result.version = self.rank_many(self.embed(faces), k)
        result.answer(faces, ranked, keep_chip, self.min_quality)
        return result

    def search_many(self, items: Iterable[tuple[str, bytes | Exception]], k: int = DEFAULT_K,
                    batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
                    max_faces: int = DEFAULT_MAX_FACES) -> Iterable[QueryResult]:
        """Answers for ``(name, bytes)`` items, in order, every face of each,
        embedding the faces of several photos in one batch. An item that cannot be
        used (or an exception in place of its bytes) is answered with ``error`` set;
        the others are still answered."""
        self._require_gallery()
        pending: list[tuple[QueryResult, list[Prepared]]] = []

        def flush():
            faces = [p for _, prepared in pending for p in prepared]
            ranked, version = self.rank_many(self.embed(faces), k) if faces else ([], 0)
            at = 0
            for result, prepared in pending:
                if prepared:
                    result.answer(prepared, ranked[at:at + len(prepared)],
                                  min_quality=self.min_quality)
                    result.version = version
                    at += len(prepared)
            out = [r for r, _ in pending]
            pending.clear()
            return out

        waiting = 0
        for name, data in items:
            result = QueryResult(photo=name, model=self.model)
            prepared: list[Prepared] = []
            try:
                if isinstance(data, Exception):
                    raise data
                prepared = self.prepare_faces(data, name, max_faces=max_faces)
            except VerifierError as exc:
                result.error = str(exc)
            pending.append((result, prepared))
            waiting += len(prepared)
            if waiting >= batch_size:
                yield from flush()
                waiting = 0
        yield from flush()

    def _require_gallery(self) -> None:
        if not self.gallery_size:
            raise GalleryEmpty(f"the gallery was never embedded with model {self.model!r}; "
                             f"run `verifier embed --data DIR --model {self.model}` first")

    def rank(self, vector: np.ndarray, k: int) -> tuple[list[Match], int]:
        """The ``k`` nearest identities and the index version searched; an
        identity's distance is that of its closest gallery photo."""
        ranked, version = self.rank_many(vector[None, :], k)
        return ranked[0], version

    def rank_many(self, vectors: np.ndarray, k: int) -> tuple[list[list[Match]], int]:
        """:meth:`rank` for several vectors in one index search (the search is
        widened only for the vectors that found fewer than ``k`` identities)."""
        index = self._gallery()
        self._require_gallery()
        return rank_identities(index, self._photos, vectors, k, self.threshold)

    def photo_vector(self, photo_id: int) -> np.ndarray:
        """The stored embedding of gallery photo ``photo_id`` under this model."""
        with self.sessions() as session:
            vector = gallery.photo_vector(session, photo_id, self.model_id)
        if vector is None:
            raise PhotoNotFound(f"no gallery photo {photo_id} embedded with model {self.model!r}")
        return vector

    def _stored_photo(self, photo_id: int) -> tuple[bytes, list[int] | None]:
        """The bytes of gallery entry ``photo_id``'s photo file, and its face's box."""
        with self.sessions() as session:
            row = gallery.gallery_photo(session, photo_id)
            path, box = (None, None) if row is None else (row.path, row.face_box)
        if path is None:
            raise PhotoNotFound(f"no gallery photo {photo_id}")
        try:
            return read_photo_bytes(Path(path)), box
        except ImageError:  # named by its id: a client never sees the server's paths
            raise PhotoFileMissing(f"the file of gallery photo {photo_id} is gone; "
                                   "run `verifier doctor` on the server") from None

    def face_chip(self, photo_id: int) -> np.ndarray:
        """The branch input of gallery photo ``photo_id`` (the aligned face chip, or
        the resized photo for models without a detector), from its stored file."""
        data, box = self._stored_photo(photo_id)
        return self.loaded.preparer.prepare_bytes(data, f"photo {photo_id}", require_face=False,
                                                  face=box).pixels

    def photo_pixels(self, photo_id: int) -> np.ndarray:
        """The whole photo of gallery entry ``photo_id`` as displayed (EXIF rotation
        applied: the frame its faces' boxes are in), decoded from its stored file."""
        from verifier.images import decode_image

        return decode_image(self._stored_photo(photo_id)[0], name=f"photo {photo_id}")

    def face_strip(self, photo_ids: Sequence[int], size: int) -> np.ndarray:
        """The face chips of gallery photos ``photo_ids`` side by side, ``size`` pixels
        square each, as one RGB array (a photo whose file is gone is a grey tile)."""
        from PIL import Image as PILImage

        strip = np.full((size, size * len(photo_ids), 3), 200, np.uint8)
        for n, photo_id in enumerate(photo_ids):
            try:
                chip = self.face_chip(photo_id)
            except PhotoNotFound:
                continue
            tile = PILImage.fromarray(np.asarray(chip, np.uint8)).resize((size, size), PILImage.BILINEAR)
            strip[:, n * size:(n + 1) * size] = np.asarray(tile.convert("RGB"))
        return strip

    def verify(self, a: Photo, b: Photo, *, threshold: float | None = None,
               names: tuple[str, str] = ("<bytes>", "<bytes>"),
               keep_chips: bool = False, face_a: int = 0, face_b: int = 0) -> Verification:
        """Distance between two photos (bytes or gallery photo ids) and the decision
        at ``threshold`` (default: the model's calibrated one); with ``keep_chips``
        the result holds both aligned faces. An uploaded photo's largest face is
        compared unless ``face_a``/``face_b`` names another (0 is the largest);
        the result says how many faces each upload holds."""
        if threshold is None:
            threshold = self.threshold
        if threshold is None:
            raise NotCalibrated(f"model {self.model!r} has no calibrated threshold yet; run "
                             "`verifier evaluate` once, or pass --threshold")
        sides = list(zip((a, b), names, (face_a, face_b)))
        prepared = {i: self.prepare(x, n, face=f) for i, (x, n, f) in enumerate(sides)
                    if not isinstance(x, int)}
        vectors = dict(zip(prepared, self.embed(list(prepared.values()))))
        va, vb = (self.photo_vector(x) if isinstance(x, int) else vectors[i]
                  for i, (x, _, _) in enumerate(sides))
        distance = float(euclidean_distance_np(va, vb))
        label = [f"photo {x}" if isinstance(x, int) else n for x, n, _ in sides]
        chips = None
        if keep_chips:
            chips = tuple(self.face_chip(x) if isinstance(x, int) else prepared[i].pixels
                          for i, (x, _, _) in enumerate(sides))
        found = [prepared[i].found if i in prepared and prepared[i].face is not None else None
                 for i in range(2)]
        boxes = [list(prepared[i].box) if i in prepared else None for i in range(2)]
        scores = [prepared[i].quality.score if i in prepared and prepared[i].quality else None
                  for i in range(2)]
        reason = next((r for i in prepared if (r := judged(prepared[i].quality, self.min_quality))),
                      None)
        return Verification(label[0], label[1], distance, float(threshold),
                            distance <= threshold and reason is None, self.model, chips,
                            found[0], found[1], prepared[0].index if 0 in prepared else 0,
                            prepared[1].index if 1 in prepared else 0, boxes[0], boxes[1],
                            reason, scores[0], scores[1])

    # -- writing -------------------------------------------------------------------------

    def enroll(self, identity: str, data: bytes, *, source: str | None = None,
               face: int | str | tuple[float, float, float, float] | None = None) -> Enrolled:
        """Add one photo of ``identity`` (created when new): the bytes are stored
        content-addressed in the workspace, the vector in the database and the live
        index. Enrolling the same bytes again for the same identity changes nothing.
        ``source`` (the upload's file name) is kept with the photo. A photo with
        several faces is refused (:class:`SeveralFaces`) unless ``face`` names one
        (``N``, 0 the largest; a box, the face that overlaps it most) or is
        ``"largest"``. Each face of a group photo is enrolled on its own, under its
        own person."""
        return self.enroll_many(identity, [(source, data)], face=face)[0]

    def enroll_many(self, identity: str, photos: Sequence[tuple[str | None, bytes]], *,
                    face: int | str | tuple[float, float, float, float] | None = None) -> list[Enrolled]:
        """:meth:`enroll` for several photos of one identity, all or nothing: every
        photo is decoded and checked first (one bad photo refuses the request), the
        vectors come from one batch, and one transaction stores them. A refusal
        part-way (a conflict on the third photo) leaves no file and no cached
        detection behind. ``face`` applies to every photo."""
        identity = identity_name(identity)
        choice = 0 if face == LARGEST else face
        if isinstance(choice, (tuple, list)) and len(choice) == 4:
            choice = tuple(float(v) for v in choice)
        elif choice is not None and not isinstance(choice, int):
            raise NoSuchFace(f"face must be a number (0 is the largest), {LARGEST!r} or a box "
                             f"(left, top, width, height), not {face!r}")
        prepared = [self.prepare(data, source or "<upload>", face=choice) for source, data in photos]
        for i, ((source, _), p) in enumerate(zip(photos, prepared)):
            if choice is None and p.found > 1:
                raise SeveralFaces(
                    f"{source or '<upload>'}: the photo holds {p.found} faces; say which one to "
                    f"enroll (face=0 is the largest) or ask for face={LARGEST}", self.boxes(p), i)
            require_quality(p.quality, self.min_quality, source or "<upload>")
        vectors = self.embed(prepared)
        new = [gallery.NewPhoto(str(self.ws.enrolled_path(p.sha256, image_format(data))), p.sha256,
                                *read_header(data), p.status.value, source, vector,
                                p.box if p.face is not None else None,
                                None if p.quality is None else p.quality.score, p.index,
                                None if p.face is None else p.face.landmarks)
               for (source, data), p, vector in zip(photos, prepared, vectors)]
        done = self.enroll_embedded(identity, new, [data for _, data in photos])
        for outcome, p in zip(done, prepared):
            if outcome.created:
                self.loaded.preparer.remember(p)
        return done

    def enroll_embedded(self, identity: str, new: Sequence[gallery.NewPhoto],
                        datas: Sequence[bytes]) -> list[Enrolled]:
        """Store photos whose vectors were computed already (``new``, with each
        photo's bytes in ``datas``) as photos of ``identity``, in one transaction:
        the second half of :meth:`enroll_many`, and how a named cluster joins the
        gallery without embedding its faces again."""
        identity = identity_name(identity)
        self._gallery()
        written: list[Path] = []

        def work(session: Session) -> list[gallery.EnrollOutcome]:
            # the files are written under the gallery write lock, before the rows
            # commit: a removal's clean-up (also under it) never deletes a file a
            # photo committed after it needs
            done = []
            for n, data in zip(new, datas):
                done.append(gallery.enroll(session, self.model_id, identity, n))
                if done[-1].photo.path == n.path and _write_new(Path(n.path), data):
                    written.append(Path(n.path))
            return done

        with self._write_lock:
            try:
                done = gallery.commit(self.sessions, work)
            except BaseException:
                self._release_files([(str(p), None) for p in written])
                raise
            added = [(o.embedding_id, o.photo, n.vector) for o, n in zip(done.result, new) if o.created]
            self.follower.apply_own(done.changes, added, [])
            version = self.follower.index.version
        return [Enrolled(o.photo_id, o.embedding_id, identity, o.face, o.created, version,
                         list(n.face_box) if n.face_box else None, n.face_index)
                for o, n in zip(done.result, new)]

    def boxes(self, prepared: Prepared) -> list[list[int]]:
        """The boxes of every face of a prepared photo, largest first."""
        detections = prepared.detections
        if detections is None and self.loaded.preparer.cache is not None:
            detections = self.loaded.preparer.cache.get(prepared.sha256)
        faces = largest_first([Face.from_dict(f) for f in detections or []])
        return [[int(round(v)) for v in f.box] for f in faces]

    def _release_files(self, photos: list[tuple[str, str | None]]) -> None:
        """Forget the workspace's copies of ``(path, sha256)`` photos that no stored
        photo has any more (an enrolled file, and with ``sha256`` its cached
        detections), under the gallery write lock: an enrollment of the same bytes
        committing at the same moment keeps its file."""
        if not photos:
            return

        def work(session: Session) -> None:
            kept = gallery.paths_in_use(session, [path for path, _ in photos])
            for path, sha256 in photos:
                if path in kept:
                    continue
                if sha256 is None:
                    Path(path).unlink(missing_ok=True)
                else:
                    self.ws.forget(path, sha256)

        gallery.commit(self.sessions, work)

    def remove_photo(self, photo_id: int, *, every_face: bool = False) -> Removed:
        """Remove the face of gallery entry ``photo_id`` (its embeddings under every
        model), or with ``every_face`` every face of its photo enrolled. The file of
        an enrolled photo, its upload name and its cached detections are deleted
        once no face of it is left; a folder's file is left alone."""
        def find(session: Session) -> list[int]:
            if gallery.gallery_photo(session, photo_id) is None:
                return []
            return gallery.faces_of_photo(session, photo_id) if every_face else [int(photo_id)]

        return self._remove(find, lambda: PhotoNotFound(f"no gallery photo {photo_id}"))

    def move_face(self, photo_id: int, name: str) -> int:
        """Give gallery entry ``photo_id`` (one face) to person ``name`` (created when
        new; a new name that reads as an existing person's is refused); the other
        faces of its photo keep their people. Returns the entry's id."""
        self._gallery()
        with self._write_lock:
            moved = gallery.commit(self.sessions, lambda session: gallery.move_face(session, photo_id, name))
            if moved.result is None:
                raise PhotoNotFound(f"no gallery photo {photo_id}")
            self.follower.catch_up()
        return moved.result

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
        self._release_files([(p.path, p.sha256) for p in removed])
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
