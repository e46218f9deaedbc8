"""A model's FAISS index held in memory and changed in place, searched from many threads.

The database is the log of record; an index file is a snapshot of it, kept in step
by :class:`storage.follower.Follower`. Index types that cannot remove vectors (HNSW)
hide removed ids at search time.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .index import DEFAULT_FACTORY, IndexInfo, build_index, is_exact, save_index, search

COMPACT_SHARE = 0.10
"""An HNSW index is rebuilt when more than this share of its vectors are removed ones."""

FetchVectors = Callable[[np.ndarray], np.ndarray]
"""``fetch(ids) -> vectors`` (float32, one row per id, in the order of ``ids``)."""


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class LiveIndex:
    """An ``IndexIDMap2`` with in-place ``add``/``remove``, a version that counts
    changes, and thread-safe ``search`` (parallel readers, one writer at a time)."""

    def __init__(self, index, model: str, factory: str = DEFAULT_FACTORY,
                 stored: FetchVectors | None = None) -> None:
        self._index = index
        self.stored = stored  # exact vectors for re-ranking approximate results
        self.model = model
        self.factory = factory
        self.exact = is_exact(factory)
        self._hidden: set[int] = set()  # removed from the gallery, still inside HNSW
        self._lock = ReadWriteLock()
        self.version = 0

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, model: str,
              factory: str = DEFAULT_FACTORY) -> "LiveIndex":
        return cls(build_index(vectors, ids, factory), model, factory)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._hidden)

    def ids(self) -> np.ndarray:
        """The ids searchable now, sorted."""
        import faiss

        with self._lock.reading():
            if not self._index.ntotal:
                return np.zeros(0, np.int64)
            ids = np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))
            if self._hidden:
                ids = ids[~np.isin(ids, np.fromiter(self._hidden, np.int64))]
            return ids

    def has(self, ids: np.ndarray) -> np.ndarray:
        """Whether each of ``ids`` is searchable now (a boolean per id)."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros(len(ids), bool)
        with self._lock.reading():
            for n, i in enumerate(ids.tolist()):
                if i in self._hidden:
                    continue
                try:  # the id map answers by its reverse map; an unknown id raises
                    self._index.reconstruct(i)
                    out[n] = True
                except RuntimeError:
                    pass
        return out

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        """Add ``vectors`` under ``ids``; returns the new version."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        with self._lock.writing():
            if len(ids):
                stale = [int(i) for i in ids if int(i) in self._hidden]
                if stale:  # hidden, then added again (a snapshot re-applying a change)
                    self._remove_physically(np.asarray(stale, np.int64))
                    self._hidden.difference_update(stale)
                self._index.add_with_ids(vectors, ids)
            self.version += 1
            return self.version

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unknown ones are ignored); returns the new version."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock.writing():
            if len(ids) and not self._remove_physically(ids):
                self._hidden.update(int(i) for i in ids)
            self.version += 1
            return self.version

    def _remove_physically(self, ids: np.ndarray) -> bool:
        import faiss

        try:
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            return True
        except RuntimeError:  # HNSW cannot remove: hide them instead
            return False

    def mismatched(self, ids: np.ndarray, stored: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
        """Those of ``ids`` whose entry in the index is not ``stored`` (their vectors
        as the database holds them). Index types that keep vectors whole are compared
        within ``tolerance``; compressed ones (PQ, SQ) only approximate a vector, so
        there an id must be among the 10 nearest entries of its own stored vector."""
        ids = np.asarray(ids, np.int64)
        with self._lock.reading():
            if any(code in self.factory for code in ("PQ", "SQ", "LSH")):
                _, found = self._index.search(np.ascontiguousarray(stored, np.float32),
                                              min(10, int(self._index.ntotal)))
                return ids[~(found == ids[:, None]).any(axis=1)]
            held = np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) \
                else np.zeros_like(stored)
        return ids[np.abs(held - stored).max(axis=1) > tolerance] if len(ids) else ids

    @property
    def hidden_share(self) -> float:
        """Share of the stored vectors that are removed but still inside the index."""
        total = int(self._index.ntotal)
        return len(self._hidden) / total if total else 0.0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """``(distances, ids, version)``: the ``k`` nearest live vectors of each query
        (euclidean, nearest first; missing neighbours: id -1, distance inf) and the
        version of the index they were found in."""
        with self._lock.reading():
            if not self._hidden:
                d, i = search(self._index, queries, k, exact=self.exact, stored=self.stored)
                return d, i, self.version
            wanted = min(int(self._index.ntotal), k + len(self._hidden))
            d, i = search(self._index, queries, wanted, exact=self.exact, stored=self.stored)
            hidden = np.isin(i, np.fromiter(self._hidden, np.int64))
            out_d = np.full((len(d), k), np.inf)
            out_i = np.full((len(d), k), -1, dtype=np.int64)
            for row in range(len(d)):
                keep = ~hidden[row] & (i[row] >= 0)
                n = min(k, int(keep.sum()))
                out_d[row, :n] = d[row][keep][:n]
                out_i[row, :n] = i[row][keep][:n]
            return out_d, out_i, self.version

    def save(self, path: Path, seq: int = -1) -> IndexInfo:
        """Write a snapshot (index file and sidecar, atomically) that reflects gallery
        change ``seq``. When more than :data:`COMPACT_SHARE` of the stored vectors are
        hidden, the index is rebuilt without them first; below that they travel in
        the file, listed in the sidecar."""
        with self._lock.reading():  # searches go on while the file is written
            if self.hidden_share <= COMPACT_SHARE:
                return save_index(path, self._index, self.model, self.factory,
                                  np.fromiter(self._hidden, np.int64), seq)
        with self._lock.writing():
            self._compact()
            return save_index(path, self._index, self.model, self.factory, seq=seq)

    def _compact(self) -> None:
        import faiss

        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        keep = ~np.isin(ids, np.fromiter(self._hidden, np.int64))
        vectors = np.stack([self._index.reconstruct(int(i)) for i in ids[keep]]) if keep.any() \
            else np.zeros((0, self._index.d), np.float32)
        self._index = build_index(vectors, ids[keep], self.factory)
        self._hidden.clear()
