"""Every write to the gallery tables (identities, images, embeddings), and nothing
else writes them: folder scans, embedded batches from any engine, enrollment,
removal and renaming. Each function works inside the caller's transaction and
notes what it changed in the change log (:mod:`.changes`); :func:`transaction`
runs a unit of work with bounded retries of races between processes."""
from __future__ import annotations

import errno
import functools
import logging
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, Iterable, NamedTuple, Sequence, TypeVar

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import AlreadyEnrolled, ConfusableName, DatabaseBusy, GalleryConflict, InvalidName, StorageFull
from ..schema import ChangeKind, Embedding, FaceFlag, Identity, Image, ImageStatus
from . import changes
from .reads import GalleryPhoto, folder_photos, identity_exists, vector_to_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")

IDENTITY_MAX_LENGTH = 255
RETRIES = 5
"""Attempts of one unit of work that lost a race with another process (a unique
row written first, a deadlock or serialisation failure on PostgreSQL)."""
RETRY_PAUSE_S = 0.05
TRANSIENT_PGCODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out


# -- names -----------------------------------------------------------------------------

def identity_name(name: str) -> str:
    """The stored form of an identity name: NFC-normalised (two spellings of one name
    are one person), 1-255 characters, no path separators, no Unicode control,
    format (bidi, zero-width), unassigned or private-use characters (category C),
    not ``.``/``..``, no surrounding spaces. Raises :class:`InvalidName`."""
    if not isinstance(name, str):
        raise InvalidName(f"invalid identity name {name!r}: not text")
    name = unicodedata.normalize("NFC", name)
    bad = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if not name or len(name) > IDENTITY_MAX_LENGTH or name != name.strip() \
            or name in (".", "..") or "/" in name or "\\" in name or bad is not None:
        why = f" (it holds U+{ord(bad):04X})" if bad is not None else ""
        raise InvalidName(f"invalid identity name {name!r}{why}: use 1-{IDENTITY_MAX_LENGTH} "
                          "characters without '/', '\\', control or invisible formatting "
                          "characters or surrounding spaces")
    return name


@functools.lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype: the smallest code point of the group
    Unicode's confusables data links it with (the groups closed under the links)."""
    from confusable_homoglyphs.utils import load

    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for char, entries in load("confusables.json").items():
        for entry in entries:
            if len(char) == 1 and len(entry["c"]) == 1:
                a, b = root(char), root(entry["c"])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {c: root(c) for c in parent}


@functools.lru_cache(maxsize=100_000)
def skeleton(name: str) -> str:
    """What a name looks like, after UTS #39's skeleton: compatibility forms and case
    folded (``ｏｂａｍａ``, ``OBAMA``), then each character replaced by its confusable
    prototype (Cyrillic ``о``, Latin ``o``). Two names with one skeleton read alike."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name).casefold())
    table = _prototypes()
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in text))


def refuse_confusable(session: Session, name: str, *, besides: int | None = None) -> None:
    """:class:`ConfusableName` when new name ``name`` reads as another identity's
    (``besides``: an identity not to compare with, the one being renamed)."""
    wanted = skeleton(name)
    for other_id, other in session.execute(select(Identity.id, Identity.name)):
        if other != name and other_id != besides and skeleton(other) == wanted:
            raise ConfusableName(f"{name!r} reads as the existing person {other!r} (another "
                                 f"case, width or script); enroll as {other!r}, or choose a "
                                 "name that cannot be mistaken for it")


def identity_id(session: Session, name: str, *, distinct: bool = False) -> int:
    """The id of identity ``name`` (normalised), created when new; with ``distinct``
    a new name that reads as an existing one is refused (:func:`refuse_confusable`:
    names clients give; a gallery folder's names are the user's own)."""
    name = identity_name(name)
    found = session.scalar(select(Identity.id).where(Identity.name == name))
    if found is not None:
        return found
    if distinct:
        refuse_confusable(session, name)
    row = Identity(name=name)
    session.add(row)
    session.flush()
    return row.id


# -- units of work -----------------------------------------------------------------------

def _transient(exc: DBAPIError) -> bool:
    """A deadlock or serialisation failure on PostgreSQL: worth retrying (a lock wait
    that ran out is :func:`busy`)."""
    return getattr(exc.orig, "pgcode", None) in TRANSIENT_PGCODES


def busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock the database did not grant in time (another process
    holds its write lock): answered as :class:`DatabaseBusy`, not as a failure."""
    orig = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and (getattr(orig, "pgcode", None) == LOCK_NOT_AVAILABLE
                                            or "database is locked" in str(orig))


FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full or read-only (a file write, or the
    database's own): answered as :class:`StorageFull`, not as a failure."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    text = str(getattr(exc, "orig", "")).lower()
    return isinstance(exc, DBAPIError) and any(
        words in text for words in ("disk is full", "readonly database", "no space left",
                                    "read-only transaction"))


class Committed(NamedTuple, Generic[T]):
    """What a unit of work returned, and the change-log sequence numbers
    ``(first, last)`` its commit was given (``None`` when it changed nothing)."""

    result: T
    changes: tuple[int, int] | None


def transaction(sessions: sessionmaker[Session], work: Callable[[Session], T], *,
                retries: int = RETRIES) -> T:
    """Run ``work(session)`` in one transaction and commit; see :func:`commit`."""
    return commit(sessions, work, retries=retries).result


def commit(sessions: sessionmaker[Session], work: Callable[[Session], T], *,
           retries: int = RETRIES) -> Committed[T]:
    """Run ``work(session)`` in one transaction, holding the gallery write lock
    (:func:`.changes.lock`) from before ``work`` reads anything, and commit. A
    unique-constraint race with another process is retried (the next attempt sees
    the other's row and decides again: no change, or :class:`GalleryConflict`); a
    deadlock or serialisation failure too, and after ``retries`` attempts a race is
    a :class:`GalleryConflict`. A write lock another process holds is waited for,
    :data:`~storage.database.BUSY_WAIT_S` seconds in all, then :class:`DatabaseBusy`;
    a full or read-only disk is :class:`StorageFull`. Either way nothing was written."""
    from ..database import BUSY_WAIT_S

    deadline = time.monotonic() + BUSY_WAIT_S
    attempt = 0
    while True:
        attempt += 1
        try:
            with sessions.begin() as session:
                changes.lock(session)
                result = work(session)
            return Committed(result, changes.logged(session))
        except IntegrityError as exc:
            if attempt >= retries:
                raise GalleryConflict("another writer changed the same gallery rows at the "
                                      "same moment; try again") from exc
            log.info("unique-constraint race, attempt %d: %s", attempt, exc.orig)
        except (OSError, DBAPIError) as exc:  # a file the work writes, or the database
            if full(exc):
                raise StorageFull("the disk of the workspace or of the database is full or "
                                  "read-only: nothing was written") from exc
            if isinstance(exc, OSError):
                raise
            if busy(exc):
                if time.monotonic() >= deadline:
                    raise DatabaseBusy("the database is busy: another process holds its write "
                                       "lock; nothing was written, try again in a moment") from None
            elif not _transient(exc) or attempt >= retries:
                raise
            log.info("transient database error, attempt %d: %s", attempt, exc.orig)
        time.sleep(min(RETRY_PAUSE_S * attempt, 0.5))


# -- folders -----------------------------------------------------------------------------

class ScannedFile(NamedTuple):
    """A photo file found in a gallery folder; ``width``/``height``/``reason`` are
    ``None`` when its bytes are those already stored under its path."""

    identity: str
    path: str
    sha256: str
    width: int | None = None
    height: int | None = None
    reason: str | None = None


@dataclass
class FolderSync:
    """What bringing the images table in line with a folder changed."""

    changed: set[int] = field(default_factory=set)  # ids of photos whose bytes changed
    moved: int = 0
    removed: int = 0
    missing: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    left_out: int = 0   # photos taken out of the gallery on request, left out again
    restored: int = 0   # such photos brought back (``restore_removed``)


def _drop_embeddings(session: Session, image_ids: Sequence[int]) -> list:
    """Delete every embedding of ``image_ids`` (all models), logging each; returns
    their ``(id, model_id, image_id)`` rows."""
    if not image_ids:
        return []
    gone = session.execute(select(Embedding.id, Embedding.model_id, Embedding.image_id)
                           .where(Embedding.image_id.in_(list(image_ids)))).all()
    for row in gone:
        changes.note(session, ChangeKind.REMOVE, model_id=row.model_id, embedding_id=row.id,
                     image_id=row.image_id)
    session.execute(delete(Embedding).where(Embedding.image_id.in_(list(image_ids))))
    return gone


def _note_update(session: Session, image_id: int) -> None:
    changes.note(session, ChangeKind.UPDATE, image_id=image_id)


def sync_folder(session: Session, root: Path, files: Iterable[ScannedFile],
                prune: bool = False, known: dict[str, Image] | None = None, *,
                restore_removed: bool = False) -> FolderSync:
    """Bring the images of folder ``root`` in line with the ``files`` scanned there:
    new files added, changed bytes re-queued (their old vectors dropped), moved or
    renamed files keep their vectors, files gone marked ``missing`` (deleted with
    ``prune``). ``removed`` photos stay removed until their bytes change. ``known``:
    :func:`folder_photos` already read in this session (read here otherwise)."""
    out = FolderSync()
    known = folder_photos(session, root) if known is None else known
    files = list(files)
    fresh = _fresh_files(files, known, out, restore_removed)
    seen = {f.path for f in files}
    gone = {p: r for p, r in known.items() if p not in seen}
    _store_fresh(session, fresh, known, gone, out)
    session.flush()
    if prune and gone:
        _drop_embeddings(session, [r.id for r in gone.values()])
        session.execute(delete(Image).where(Image.id.in_([r.id for r in gone.values()])))
        out.removed = len(gone)
    else:
        for row in gone.values():
            row.status = ImageStatus.MISSING
        out.missing = len(gone)
    session.flush()
    return out


def _fresh_files(files: list[ScannedFile], known: dict[str, Image], out: FolderSync,
                 restore_removed: bool) -> list[ScannedFile]:
    """The files whose path or bytes are new; those already stored as they are only
    have their status brought back (a missing file found again, a removed one
    restored on request) and are counted in ``out``."""
    fresh: list[ScannedFile] = []
    for f in files:
        row = known.get(f.path)
        if row is None or row.sha256 != f.sha256:
            fresh.append(f)
        elif row.status == ImageStatus.SKIPPED:
            out.skipped[f.path] = row.reason or "skipped"
        elif row.status == ImageStatus.MISSING:
            row.status = ImageStatus.OK
        elif row.status == ImageStatus.REMOVED and restore_removed:
            row.status = ImageStatus.OK  # embedded again: its vectors went with the removal
            out.restored += 1
        elif row.status == ImageStatus.REMOVED:
            out.left_out += 1
    return fresh


def _store_fresh(session: Session, fresh: list[ScannedFile], known: dict[str, Image],
                 gone: dict[str, Image], out: FolderSync) -> None:
    """Store new and changed files: changed bytes re-queued (old vectors dropped), the
    bytes of a file ``gone`` under a new name moved (vectors kept), others added."""
    by_sha: dict[str, list[Image]] = {}
    for row in known.values():
        by_sha.setdefault(row.sha256, []).append(row)
    identities: dict[str, int] = {}
    for f in fresh:
        if f.identity not in identities:
            identities[f.identity] = identity_id(session, f.identity)
        ident = identities[f.identity]
        status = ImageStatus.OK if f.reason is None else ImageStatus.SKIPPED
        if f.reason is not None:
            out.skipped[f.path] = f.reason
        row = known.get(f.path)
        if row is not None:  # same path, new bytes: embed again
            _drop_embeddings(session, [row.id])
            row.sha256, row.width, row.height = f.sha256, f.width, f.height
            row.status, row.reason, row.identity_id, row.flags = status, f.reason, ident, None
            row.face_box, row.landmarks, row.quality = None, None, None  # set when embedded
            if status == ImageStatus.OK:
                out.changed.add(row.id)
            continue
        moved = next((r for r in by_sha.get(f.sha256, []) if r.path in gone), None)
        if moved is not None:  # same bytes under a new name: keep its vectors
            del gone[moved.path]
            moved.path, moved.identity_id, moved.status = f.path, ident, status
            _note_update(session, moved.id)
            out.moved += 1
            continue
        session.add(Image(path=f.path, sha256=f.sha256, identity_id=ident, width=f.width,
                          height=f.height, status=status, reason=f.reason))


# -- vectors -----------------------------------------------------------------------------

class PreparedRow(NamedTuple):
    """One photo of an embedding batch: unusable (``reason``) or embedded with what
    the detector found (``face``: face, several_faces, no_face or whole)."""

    image_id: int
    path: str
    reason: str | None
    face: str | None
    quality: float | None = None
    box: tuple[int, int, int, int] | None = None
    """The face used, ``[left, top, width, height]`` (``None``: the whole photo)."""
    landmarks: tuple[tuple[float, float], ...] | None = None
    """Its five points."""


def _add_vectors(session: Session, model_id: int, image_ids: Sequence[int],
                 vectors: np.ndarray) -> list[int]:
    if not len(image_ids):
        return []
    rows = [{"image_id": int(i), "model_id": model_id, "vector": vector_to_bytes(v)}
            for i, v in zip(image_ids, vectors)]
    table = Embedding.__table__  # Core: no ORM bookkeeping for rows nobody reads back
    ids = list(session.connection().execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    for emb, image in zip(ids, image_ids):
        changes.note(session, ChangeKind.ADD, model_id=model_id, embedding_id=int(emb),
                     image_id=int(image))
    return ids


def store_batch(session: Session, model_id: int, rows: Sequence[PreparedRow],
                vectors: np.ndarray) -> list[int]:
    """Store one embedded batch, whatever engine made it: unusable photos marked
    ``skipped`` with their reason, face flags set by :meth:`FaceFlag.of`, each face's
    quality, box and landmarks, and the vectors of the usable rows (in order) added.
    Returns the new embedding ids."""
    usable = [r for r in rows if r.reason is None]
    for r in rows:
        if r.reason is not None:
            session.execute(update(Image).where(Image.id == r.image_id)
                            .values(status=ImageStatus.SKIPPED, reason=r.reason))
        elif (flag := FaceFlag.of(r.face)) is not None:
            session.execute(update(Image).where(Image.id == r.image_id).values(flags=flag))
    rated = [{"id": r.image_id, "quality": r.quality,
              "face_box": None if r.box is None else [int(v) for v in r.box],
              "landmarks": None if r.landmarks is None else [[float(x), float(y)] for x, y in r.landmarks]}
             for r in usable if r.quality is not None]
    if rated:  # one statement for the batch (UPDATE by primary key, executemany)
        session.execute(update(Image), rated)
    return _add_vectors(session, model_id, [r.image_id for r in usable], vectors)


# -- enrollment --------------------------------------------------------------------------

class NewPhoto(NamedTuple):
    """A photo to enroll: stored at ``path`` (content-addressed), with its vector."""

    path: str
    sha256: str
    width: int | None
    height: int | None
    face: str
    source: str | None
    vector: np.ndarray
    face_box: tuple[int, int, int, int] | None = None
    """The face enrolled, when the detector found one."""
    quality: float | None = None
    """That face's quality, 0-1."""
    face_index: int = 0
    """Its position among the photo's faces, largest first: a group photo is enrolled
    once per face, each face under its own person."""
    landmarks: tuple[tuple[float, float], ...] | None = None
    """Its five points (eyes, nose, mouth corners)."""


class EnrollOutcome(NamedTuple):
    photo_id: int
    embedding_id: int
    face: str
    created: bool
    photo: GalleryPhoto


def enroll(session: Session, model_id: int, identity: str, photo: NewPhoto) -> EnrollOutcome:
    """Add one face of a photo (``photo.face_index``) as ``identity`` (created when
    new) with its vector under ``model_id``. The same face already enrolled for that
    identity changes nothing (``created`` false); enrolled for another identity:
    :class:`AlreadyEnrolled`. Other faces of the same photo are rows of their own,
    each with its own person."""
    name = identity_name(identity)
    face = int(photo.face_index)
    row = session.scalar(select(Image).where(Image.path == photo.path, Image.face == face))
    if row is not None and row.status == ImageStatus.OK and row.identity.name != name:
        raise AlreadyEnrolled(f"{_which(face)} is already enrolled as {row.identity.name!r} "
                              f"(photo {row.id}); remove it there first")
    twin = session.execute(select(Image, Identity.name).join(Identity, Identity.id == Image.identity_id)
                           .where(Image.sha256 == photo.sha256, Image.path != photo.path,
                                  Image.face == face, Image.status == ImageStatus.OK).limit(1)).first()
    if twin is not None:  # the same bytes from a gallery folder: one face, one person
        if twin.name != name:
            raise AlreadyEnrolled(f"{_which(face)} is already in the gallery as {twin.name!r} "
                                  f"(photo {twin.Image.id}); remove it there first")
        embedded = session.scalar(select(Embedding.id).where(Embedding.image_id == twin.Image.id,
                                                             Embedding.model_id == model_id))
        if embedded is not None:
            return EnrollOutcome(twin.Image.id, embedded,
                                 twin.Image.flags.value if twin.Image.flags else photo.face, False,
                                 GalleryPhoto(twin.Image.id, twin.Image.path, photo.sha256, name))
    existing = None if row is None else session.scalar(
        select(Embedding.id).where(Embedding.image_id == row.id, Embedding.model_id == model_id))
    gallery_photo = GalleryPhoto(0, photo.path, photo.sha256, name)
    if row is not None and row.status == ImageStatus.OK and existing is not None:
        return EnrollOutcome(row.id, existing, row.flags.value if row.flags else photo.face,
                             False, gallery_photo._replace(image_id=row.id))
    ident = identity_id(session, name, distinct=True)
    flag = FaceFlag.of(photo.face)
    source = (photo.source or "")[-255:] or None
    box = None if photo.face_box is None else [int(v) for v in photo.face_box]
    points = None if photo.landmarks is None else [[float(x), float(y)] for x, y in photo.landmarks]
    if row is None:
        row = Image(path=photo.path, face=face, sha256=photo.sha256, identity_id=ident,
                    width=photo.width, height=photo.height, status=ImageStatus.OK, flags=flag,
                    source=source, face_box=box, quality=photo.quality, landmarks=points)
        session.add(row)
        session.flush()
    else:  # removed before, or enrolled under another model only (which chose its face)
        if row.status != ImageStatus.OK:
            row.face_box, row.quality, row.landmarks = box, photo.quality, points
        row.identity_id, row.status, row.flags, row.source = ident, ImageStatus.OK, flag, source
        session.flush()
        _note_update(session, row.id)
    if existing is None:
        existing = _add_vectors(session, model_id, [row.id], photo.vector[None, :])[0]
    return EnrollOutcome(row.id, existing, photo.face, True, gallery_photo._replace(image_id=row.id))


def _which(face: int) -> str:
    return "this photo" if face == 0 else f"face {face} of this photo"


# -- removal and renaming ----------------------------------------------------------------

class RemovedPhoto(NamedTuple):
    """A photo taken out of the gallery: what to forget on disk, and the embeddings
    it had (model id -> embedding id)."""

    image_id: int
    path: str
    sha256: str
    enrolled: bool
    embeddings: dict[int, int]


def remove_photos(session: Session, image_ids: Sequence[int],
                  is_enrolled: Callable[[str], bool]) -> list[RemovedPhoto]:
    """Take gallery photos out (their vectors under every model). An enrolled photo's
    row goes entirely, with its upload name (its file is the caller's to delete,
    after the commit); a folder photo stays ``removed`` so that the next scan does
    not bring it back. An identity left with no photo at all is deleted too."""
    rows = list(session.scalars(select(Image).where(Image.id.in_([int(i) for i in image_ids]),
                                                    Image.status == ImageStatus.OK)))
    if not rows:
        return []
    ids = [r.id for r in rows]
    vectors: dict[int, dict[int, int]] = {}
    for gone in _drop_embeddings(session, ids):
        vectors.setdefault(gone.image_id, {})[gone.model_id] = gone.id
    out = [RemovedPhoto(r.id, r.path, r.sha256, is_enrolled(r.path), vectors.get(r.id, {}))
           for r in rows]
    people = {r.identity_id for r in rows}
    enrolled = [r.id for r, o in zip(rows, out) if o.enrolled]
    if enrolled:
        session.execute(delete(Image).where(Image.id.in_(enrolled)))
    kept = [i for i in ids if i not in set(enrolled)]
    if kept:
        session.execute(update(Image).where(Image.id.in_(kept))
                        .values(status=ImageStatus.REMOVED, source=None))
    session.flush()
    orphans = [i for i in people
               if session.scalar(select(Image.id).where(Image.identity_id == i).limit(1)) is None]
    if orphans:
        session.execute(delete(Identity).where(Identity.id.in_(orphans)))
    return out


def photos_of(session: Session, name: str) -> list[int]:
    """The ids of identity ``name``'s gallery photos."""
    return list(session.scalars(select(Image.id).join(Identity, Image.identity_id == Identity.id)
                                .where(Identity.name == identity_name(name),
                                       Image.status == ImageStatus.OK)))


def move_face(session: Session, image_id: int, name: str) -> int | None:
    """Give one gallery face (entry ``image_id``) to person ``name``: created when new
    (refused when it reads as an existing person, :func:`refuse_confusable`); the
    person it leaves is deleted when that was their last face. ``None`` when the
    entry is not in the gallery."""
    row = session.scalar(select(Image).where(Image.id == int(image_id), Image.status == ImageStatus.OK))
    if row is None:
        return None
    target = identity_id(session, name, distinct=True)
    if target == row.identity_id:
        return row.id
    left = row.identity_id
    row.identity_id = target
    session.flush()
    _note_update(session, row.id)
    if session.scalar(select(Image.id).where(Image.identity_id == left).limit(1)) is None:
        session.execute(delete(Identity).where(Identity.id == left))
    return row.id


def rename_identity(session: Session, old: str, new: str, *, merge: bool = False) -> int:
    """Rename identity ``old`` to ``new``; when ``new`` has gallery photos, they are
    merged only with ``merge`` (else :class:`GalleryConflict`); a ``new`` whose photos
    were all removed is no person any more and is taken over. Returns the photos
    that carry the new name (``old``'s count when the names are the same); 0 when
    ``old`` has no gallery photo. Run it under the gallery write lock (:func:`commit`):
    the photos moved are every photo of ``old`` at commit time."""
    old, new = identity_name(old), identity_name(new)
    source = session.scalar(select(Identity).where(Identity.name == old))
    if source is None:
        return 0
    images = list(session.scalars(select(Image.id).where(Image.identity_id == source.id,
                                                         Image.status == ImageStatus.OK)))
    if not images or old == new:
        return len(images)
    target = session.scalar(select(Identity).where(Identity.name == new))
    if target is None:
        refuse_confusable(session, new, besides=source.id)
        source.name = new
    elif not merge and identity_exists(session, new):
        raise GalleryConflict(f"{new!r} is already a person in the gallery; merge the two "
                              "explicitly (merge=true, --merge)")
    else:
        session.execute(update(Image).where(Image.identity_id == source.id)
                        .values(identity_id=target.id))
        images = list(session.scalars(select(Image.id).where(Image.identity_id == target.id,
                                                             Image.status == ImageStatus.OK)))
        session.flush()
        session.delete(source)
    for image in images:
        _note_update(session, image)
    session.flush()
    return len(images)
