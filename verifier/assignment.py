"""Faces joining groups as they arrive: the rule that gives each new face a group,
and the replay of that rule over every face, which regroups from scratch.

Each face, in the order faces arrive, looks at its ``k`` nearest earlier faces
within the distance threshold and joins the group with the most closeness among them
(``1 - distance / threshold``, as :func:`verifier.clustering.closeness` weighs
edges; ties: the smaller group number); a face with no earlier face that close
starts a new group. Groups never merge and a face never moves: a face that bridges
two people joins one of them instead of chaining them into one group (what single
linkage does), and what users already named stays as they named it.

The rule depends only on the faces before each face, so groups made batch by batch
as photos arrive are the groups a replay of every face in the same order makes, for
any split into batches (``tests/verifier/test_assignment.py``). To make that exact,
every distance that decides is computed in float64 from the vectors; FAISS (exact,
float32) only proposes candidates.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .clustering import ClusteringError, _check
from .defaults import DEFAULT_GROUP_CENTRE, DEFAULT_NEIGHBOURS

CANDIDATES = 4
"""Candidates FAISS proposes per face, as a multiple of ``k``: the ``k`` nearest by
float64 distance are among them unless float32 round-off reorders more than that."""
MIN_WEIGHT = 1e-6
"""The closeness of a face exactly at the threshold (it still votes)."""
FIXED = 2.0 ** 32
"""Group centres are sums of vectors in fixed point (``round(v * FIXED)`` as int64):
integer sums do not depend on the order faces were added in, so a grouping rebuilt
from stored labels has the very centres of the one that made them. Steps of 2.3e-10
(face networks' distances are tenths); room for 2 billion faces a group with vector
entries up to 1 in size, 20 million with entries up to 100."""


def _distances(rows: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Euclidean distances from one face to ``rows``, in float64: the one formula every
    deciding distance goes through, so a pair scores the same in any batch split."""
    diff = rows.astype(np.float64) - face.astype(np.float64)
    return np.sqrt((diff * diff).sum(axis=1))


class Groups:
    """A grouping that grows: every face added so far (in arrival order) with its group
    number. ``labels`` of faces present at the start may be any non-negative numbers
    (the groups of an earlier run); new groups take numbers above every one used and
    above ``next_label``. ``names``: groups people have named (group -> name); two
    groups named differently never merge."""

    def __init__(self, threshold: float, k: int = DEFAULT_NEIGHBOURS, *,
                 centre: float | None = DEFAULT_GROUP_CENTRE,
                 merge: bool = True, names: Mapping[int, str] | None = None,
                 vectors: np.ndarray | None = None, labels: np.ndarray | None = None,
                 next_label: int = 0) -> None:
        if not threshold > 0:
            raise ClusteringError(f"the threshold must be above 0, not {threshold}")
        self.threshold = float(threshold)
        self.k = max(1, int(k))
        self.centre = centre
        self._index = None
        self._vectors = np.zeros((0, 0), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._size = 0
        self._sums: dict[int, list] = {}  # group -> [sum of its vectors (fixed point), count]
        self._parent: dict[int, int] = {}  # a merged group -> the group it joined
        self.merge = merge
        self.names: dict[int, str] = dict(names or {})
        self.next_label = int(next_label)
        if vectors is not None and len(vectors):
            vectors = _check(vectors)
            labels = np.asarray(labels if labels is not None else [], np.int64)
            if labels.shape != (len(vectors),) or (labels < 0).any():
                raise ClusteringError("one non-negative label per vector is needed")
            for vector, label in zip(vectors, labels):
                self._join(int(label), vector)
            self._append(vectors, labels)
            self.next_label = max(self.next_label, int(labels.max()) + 1)

    def __len__(self) -> int:
        return self._size

    @property
    def labels(self) -> np.ndarray:
        """The group of every face, in arrival order (merged groups resolved)."""
        labels = self._labels[:self._size].copy()
        if self._parent:
            lookup = {label: self._root(label) for label in np.unique(labels).tolist()}
            labels = np.array([lookup[x] for x in labels.tolist()], np.int64)
        return labels

    def _append(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        import faiss

        if self._index is None:
            self._index = faiss.IndexFlatL2(vectors.shape[1])
            self._vectors = np.zeros((self._size, vectors.shape[1]), np.float32)
        need = self._size + len(vectors)
        if need > len(self._vectors):  # room to grow: amortised copies, not one per batch
            room = max(need, 2 * len(self._vectors), 1024)
            grown = np.zeros((room, vectors.shape[1]), np.float32)
            grown[:self._size] = self._vectors[:self._size]
            self._vectors = grown
            more = np.zeros(room, np.int64)
            more[:self._size] = self._labels[:self._size]
            self._labels = more
        self._vectors[self._size:need] = vectors
        self._labels[self._size:need] = labels
        self._index.add(vectors)
        self._size = need

    def _join(self, label: int, face: np.ndarray) -> None:
        entry = self._sums.setdefault(label, [np.zeros(len(face), np.int64), 0])
        entry[0] += np.round(face.astype(np.float64) * FIXED).astype(np.int64)
        entry[1] += 1

    def _centre(self, label: int) -> tuple[np.ndarray, int]:
        total, count = self._sums[label]
        return total.astype(np.float64) / FIXED / count, count

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Give each of ``vectors`` (in arrival order) its group; returns their labels."""
        batch = _check(vectors)
        if not len(batch):
            return np.zeros(0, np.int64)
        if self._index is None:  # the first faces: the width is theirs
            self._vectors = np.zeros((0, batch.shape[1]), np.float32)
        elif batch.shape[1] != self._vectors.shape[1]:
            raise ClusteringError(f"vectors of width {batch.shape[1]}, not {self._vectors.shape[1]}")
        proposed = self._proposed(batch)
        offset = self._size
        known = self._labels[:offset]  # as assigned; merges are resolved when they vote
        out = np.empty(len(batch), np.int64)
        for i, face in enumerate(batch):
            earlier = proposed[i]
            ids = np.concatenate([earlier, offset + np.arange(i)])
            dist = np.concatenate([_distances(self._vectors[earlier], face), _distances(batch[:i], face)])
            group, heard = self._choose(ids, dist, np.concatenate([known[earlier], out[:i]]), face)
            self._join(group, face)
            out[i] = self._merge(group, heard) if self.merge and self.centre is not None else group
        self._append(batch, out)
        return out

    def _proposed(self, batch: np.ndarray) -> list[np.ndarray]:
        """Per face of ``batch``: the faces already grouped that FAISS proposes as its
        nearest (their float64 distances decide)."""
        if not self._size:
            return [np.zeros(0, np.int64)] * len(batch)
        _, ids = self._index.search(batch, min(self._size, self.k * CANDIDATES))
        return [row[row >= 0].astype(np.int64) for row in ids]

    def _choose(self, ids: np.ndarray, dist: np.ndarray, labels: np.ndarray,
                face: np.ndarray) -> tuple[int, list[int]]:
        """The group of one face, and the other groups it heard from: its ``k``
        nearest earlier faces within the threshold (ties: the earlier face) vote by
        closeness, and the face joins the group with the most votes whose centre it
        is near enough to (:meth:`_near_centre`); else a new group."""
        close = dist <= self.threshold
        ids, dist, labels = ids[close], dist[close], labels[close]
        if len(ids):
            nearest = np.lexsort((ids, dist))[:self.k]
            weight = np.maximum(1.0 - dist[nearest] / self.threshold, MIN_WEIGHT)
            heard = np.array([self._root(int(x)) for x in labels[nearest]], np.int64)
            groups, inverse = np.unique(heard, return_inverse=True)
            votes = np.bincount(inverse.ravel(), weights=weight)
            ranked = [int(groups[b]) for b in np.lexsort((groups, -votes))]  # most votes first
            for n, g in enumerate(ranked):
                if self._near_centre(g, face):
                    return g, ranked[:n] + ranked[n + 1:]
        label, self.next_label = self.next_label, self.next_label + 1
        return label, []

    def _merge(self, group: int, others: list[int]) -> int:
        """After a face joined ``group``: each other group it heard from merges with it
        when their centres are as near as two samples of one person would be
        (``threshold * sqrt((1/n + 1/m) / 2)`` for groups of ``n`` and ``m`` faces),
        so that a person whose first faces started two groups becomes one. Two groups
        named differently (:attr:`names`) never merge; a named group keeps its number
        (and name), else the smaller number stays. Returns the face's group."""
        for other in others:
            other = self._root(other)
            a, b = self.names.get(group), self.names.get(other)
            if other == group or (a is not None and b is not None and a != b):
                continue
            (ca, na), (cb, nb) = self._centre(group), self._centre(other)
            radius = self.threshold * np.sqrt((1 / na + 1 / nb) / 2) * self.centre
            if float(np.sqrt(((ca - cb) ** 2).sum())) <= radius:
                keep, gone = (other, group) if (b is not None and a is None) or (
                    (a is None) == (b is None) and other < group) else (group, other)
                self._parent[gone] = keep
                self._sums[keep] = [self._sums[keep][0] + self._sums[gone][0],
                                    self._sums[keep][1] + self._sums[gone][1]]
                del self._sums[gone]
                group = keep
        return group

    def _root(self, label: int) -> int:
        while label in self._parent:
            label = self._parent[label]
        return label

    def _near_centre(self, group: int, face: np.ndarray) -> bool:
        """Whether ``face`` lies as near the centre of ``group`` as a face of the group's
        person would: two faces of one person are up to the threshold apart, so one
        face is up to ``threshold * sqrt((1 + 1/n) / 2)`` from the mean of ``n`` others
        (for vectors scattered alike around the person). A face of a look-alike, near
        a few of the group's faces but off its centre, starts its own group instead of
        taking the group over."""
        if self.centre is None:
            return True
        centre, count = self._centre(group)
        radius = self.threshold * np.sqrt((1 + 1 / count) / 2) * self.centre
        return float(np.sqrt(((centre - face.astype(np.float64)) ** 2).sum())) <= radius


def regroup(vectors: np.ndarray, threshold: float, k: int = DEFAULT_NEIGHBOURS, *,
            batch: int = 1000, centre: float | None = DEFAULT_GROUP_CENTRE) -> np.ndarray:
    """Every face grouped from scratch in the given (arrival) order, ``batch`` at a
    time: the groups :class:`Groups` makes when the same faces arrive in any batches."""
    vectors = _check(vectors)
    groups = Groups(threshold, k, centre=centre)
    for at in range(0, len(vectors), batch):
        groups.add(vectors[at:at + batch])
    return groups.labels
