"""A model's live index and photo metadata, kept in step with the database by the
gallery change log.

Loading takes the index snapshot (whose sidecar names the last change it reflects)
and applies the changes logged after it; a snapshot without a sequence, damaged,
of another type or from another database is rebuilt from the stored vectors.
Applying changes is idempotent (an id is never reused, an embedding's vector never
changes), so a follower may see a change twice, its own writes included, and never
needs to know what other processes did except through the log.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from . import gallery
from .errors import IndexMismatch
from .gallery.changes import ChangeRow, Lag
from .index import DEFAULT_FACTORY, load_index, read_sidecar
from .live_index import LiveIndex
from .schema import ChangeKind

log = logging.getLogger(__name__)

CHANGES_PER_READ = 10_000


@dataclass(frozen=True)
class CatchUp:
    """What loading or following the log changed in the index."""

    added: int = 0
    removed: int = 0
    updated: int = 0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated or self.rebuilt)

    def __add__(self, other: "CatchUp") -> "CatchUp":
        return CatchUp(self.added + other.added, self.removed + other.removed,
                       self.updated + other.updated, self.rebuilt or other.rebuilt)


class Follower:
    """The index and metadata of model ``model`` (row ``model_id``) at snapshot
    ``path``. Not thread-safe by itself: the owner serialises :meth:`load`,
    :meth:`catch_up`, :meth:`apply_own` and :meth:`save`; searches of
    :attr:`index` run alongside them."""

    def __init__(self, sessions: sessionmaker[Session], path: Path, *, model: str,
                 model_id: int, dimension: int) -> None:
        self.sessions = sessions
        self.path = Path(path)
        self.model = model
        self.model_id = model_id
        self.dimension = dimension
        self.index: LiveIndex | None = None
        self.photos: dict[int, gallery.GalleryPhoto] = {}
        self.seq = 0
        self.dirty = False
        self._lock = threading.RLock()

    def _fetch(self, ids: np.ndarray) -> np.ndarray:
        with self.sessions() as session:
            return gallery.vectors_of(session, ids)

    # -- loading ---------------------------------------------------------------------

    def load(self, factory: str | None = None, rebuild: bool = False) -> CatchUp:
        """Open the snapshot (or build the index from the database) and catch up."""
        with self._lock:
            loaded = None if rebuild else self._open_snapshot(factory)
            with self.sessions() as session:
                head = gallery.changes.head(session)
                if loaded is not None and loaded[1] > head:
                    log.warning("the index snapshot %s is ahead of this database's change log "
                                "(another database?); rebuilding it", self.path)
                    loaded = None
                if loaded is None:
                    # the head first: whatever the vectors read below already hold is
                    # applied again, harmlessly
                    self.index = self._build(session, factory)
                    self.seq, caught = head, CatchUp(added=len(self.index), rebuilt=True)
                else:
                    self.index, self.seq = loaded
                    caught = CatchUp()
                self.photos = gallery.embedded_photos(session, self.model_id)
            self.dirty = caught.rebuilt
            return caught + self.catch_up()

    def _open_snapshot(self, factory: str | None) -> tuple[LiveIndex, int] | None:
        try:
            index, info = load_index(self.path, model=self.model, dimension=self.dimension)
        except IndexMismatch as exc:
            if self.path.exists() or self.path.with_name(self.path.name + ".json").exists():
                log.warning("%s; rebuilding it from the database", exc)
            return None
        if info.seq < 0 or (factory and info.factory != factory):
            return None
        live = LiveIndex(index, self.model, info.factory, stored=self._fetch)
        live._hidden.update(info.hidden)
        return live, info.seq

    def _build(self, session: Session, factory: str | None) -> LiveIndex:
        if factory is None:
            try:  # a damaged file keeps its type when the sidecar still says it
                factory = read_sidecar(self.path).factory
            except IndexMismatch:
                factory = DEFAULT_FACTORY
        ids, vectors = gallery.model_vectors(session, self.model_id)
        if not len(ids):
            vectors = np.zeros((0, self.dimension), np.float32)
        live = LiveIndex.build(vectors, ids, self.model, factory)
        live.stored = self._fetch
        return live

    # -- following -------------------------------------------------------------------

    def catch_up(self) -> CatchUp:
        """Apply every change logged after :attr:`seq`."""
        total = CatchUp()
        with self._lock:
            while True:
                with self.sessions() as session:
                    rows = gallery.changes.after(session, self.seq, CHANGES_PER_READ)
                    if not rows:
                        return total
                    total = total + self._apply(session, rows)
                self.seq = rows[-1].seq
                if len(rows) < CHANGES_PER_READ:
                    return total

    def _apply(self, session: Session, rows: Iterable[ChangeRow]) -> CatchUp:
        last: dict[int, ChangeKind] = {}  # embedding id -> its last add or remove
        touched: set[int] = set()          # images whose metadata changed
        for row in rows:
            if row.kind == ChangeKind.UPDATE:
                touched.add(row.image_id)
            elif row.model_id == self.model_id:
                last[row.embedding_id] = row.kind
        removes = np.asarray([i for i, kind in last.items() if kind == ChangeKind.REMOVE], np.int64)
        adds = np.asarray([i for i, kind in last.items() if kind == ChangeKind.ADD], np.int64)
        gone = removes[self.index.has(removes)].tolist()
        wanted = adds[~self.index.has(adds)]
        # an embedding removed since is not found: its removal is further on in the log
        ids, vectors = gallery.vectors_found(session, wanted)
        photos = gallery.embedded_photos(session, self.model_id, ids) if len(ids) else {}
        if len(ids):  # an embedding whose photo went in between is left to its removal
            keep = np.asarray([int(i) in photos for i in ids], bool)
            ids, vectors = ids[keep], vectors[keep]
        updated = gallery.embedded_photos_of_images(session, self.model_id, touched) if touched else {}
        self._remove(gone)
        for i in removes:  # metadata loaded from the database may be ahead of the index
            self.photos.pop(int(i), None)
        self._add(ids, vectors, [photos[int(i)] for i in ids])
        self.photos.update({i: p for i, p in updated.items() if i in self.photos})
        caught = CatchUp(added=len(ids), removed=len(gone), updated=len(updated))
        self.dirty |= caught.changed
        return caught

    def _add(self, ids: np.ndarray, vectors: np.ndarray, photos: list[gallery.GalleryPhoto]) -> None:
        if len(ids):
            self.index.add(ids, vectors)
            self.photos.update(zip((int(i) for i in ids), photos))

    def _remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove(np.asarray(ids, np.int64))
            for i in ids:
                self.photos.pop(i, None)

    def apply_own(self, logged: tuple[int, int] | None, added: list[tuple[int, gallery.GalleryPhoto, np.ndarray]],
                  removed: list[int]) -> None:
        """Apply this process's own committed write at once (searches see it without
        waiting for :meth:`catch_up`). When the write's changes directly follow
        :attr:`seq` (nobody else wrote in between), :attr:`seq` moves past them."""
        with self._lock:
            held = self.index.has(np.asarray([a[0] for a in added], np.int64))
            new = [a for a, h in zip(added, held) if not h]
            removed = np.asarray(removed, np.int64)
            self._remove(removed[self.index.has(removed)].tolist())
            if new:
                self._add(np.asarray([a[0] for a in new], np.int64), np.stack([a[2] for a in new]),
                          [a[1] for a in new])
            self.dirty = True
            if logged is not None and logged[0] == self.seq + 1:
                self.seq = logged[1]

    def lag(self) -> Lag:
        """Changes logged that this follower has not applied, and the oldest one's age."""
        with self.sessions() as session:
            return gallery.changes.lag(session, self.seq)

    def save(self, force: bool = False) -> bool:
        """Write the snapshot (with :attr:`seq`) if anything changed since it was loaded."""
        with self._lock:
            if self.index is None or not (self.dirty or force):
                return False
            self.index.save(self.path, self.seq)
            self.dirty = False
            return True


AUDIT_SAMPLE = 100_000
"""Vectors compared one by one by :func:`audit`; larger galleries are sampled (seeded)."""


@dataclass(frozen=True)
class Audit:
    """How a loaded index compares with the stored vectors."""

    total: int               # vectors in the database
    checked: int             # compared one by one
    missing: tuple[int, ...]  # in the database, not in the index (first few)
    extra: tuple[int, ...]    # in the index, not in the database (first few)
    wrong: tuple[int, ...]    # in both, with another vector (first few)

    @property
    def sampled(self) -> bool:
        return self.checked < self.total

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.wrong)

    def describe(self) -> str:
        parts = [f"{len(v)}{'+' if len(v) == 10 else ''} {what} (ids {', '.join(map(str, v[:5]))})"
                 for v, what in ((self.missing, "vectors missing"), (self.extra, "removed vectors still held"),
                                 (self.wrong, "ids holding another vector")) if v]
        return "; ".join(parts)


def audit(index: LiveIndex, sessions: sessionmaker[Session], model_id: int, *,
          sample: int = AUDIT_SAMPLE, seed: int = 0) -> Audit:
    """Compare ``index`` with the vectors stored for ``model_id``: the same ids, and
    under each id (all of them, or a seeded sample of ``sample``) the stored vector:
    equal within 1e-5 for index types that keep vectors whole; for compressed types
    (PQ, SQ), the id is among the 10 nearest entries of its own stored vector."""
    with sessions() as session:
        db_ids = gallery.model_ids(session, model_id)
    have = index.ids()
    missing = np.setdiff1d(db_ids, have)
    extra = np.setdiff1d(have, db_ids)
    both = np.intersect1d(db_ids, have)
    if len(both) > sample:
        both = np.sort(np.random.default_rng(seed).choice(both, sample, replace=False))
    wrong: list[int] = []
    for start in range(0, len(both), 10_000):
        ids = both[start:start + 10_000]
        with sessions() as session:
            stored = gallery.vectors_of(session, ids)
        wrong += [int(i) for i in index.mismatched(ids, stored)]
        if len(wrong) >= 10:
            break
    return Audit(len(db_ids), len(both), tuple(int(i) for i in missing[:10]),
                 tuple(int(i) for i in extra[:10]), tuple(wrong[:10]))
