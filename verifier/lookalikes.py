"""Look-alikes: two people of a gallery whom the model nearly takes for one, the
pairs a user should check before trusting the names they get (siblings, a child and
a parent, one person enrolled under two names). Nothing is merged: the pairs are
listed with the photos that bridge them.

Two people are listed when a photo of one and a photo of the other are nearer than
the matching threshold plus :data:`MARGIN`: the model would call them the same
person, or nearly. Candidate pairs are the nearest people by the centres of their
photos' vectors (:func:`verifier.clustering.nearest_neighbours`), so a gallery of
many people is checked without comparing every pair of them; the photos of each
candidate pair are then compared exactly.

Why the threshold and not the spread of each person's photos: in a face network's
space the photos of one person lie on a shell around their centre, and the centres
of different people sit closer than the sum of those radii (on the 16 seed people,
44 of their 120 pairs "overlapped" so), while none of their photos comes within the
threshold of another person's; planted look-alikes do (``benchmarks/cluster_quality.py``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clustering import nearest_neighbours

MARGIN = 0.05
"""How far above the threshold (a fraction of it) two people's closest photos may be
and still be listed: pairs the model nearly matches are worth a look too."""
NEAREST_PEOPLE = 10
"""The nearest other people (by centre) each person's photos are compared with."""
BRIDGES = 3
"""The closest pairs of photos (one of each person) listed for a look-alike pair."""


@dataclass(frozen=True)
class Bridge:
    """Two photos, one of each person (indices into the vectors), and their distance."""

    first: int
    second: int
    distance: float


@dataclass(frozen=True)
class LookAlike:
    """Two people (labels, ``first < second``) whose closest photos are ``distance``
    apart, under ``limit`` (the threshold plus the margin), with those photos."""

    first: int
    second: int
    distance: float
    limit: float
    bridges: tuple[Bridge, ...]


def people(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(labels, photos)``: each person's label (sorted) and the indices of their
    photos, found in one sort of the labels."""
    names, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return names, np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def look_alikes(vectors: np.ndarray, labels: np.ndarray, threshold: float, *,
                margin: float = MARGIN) -> list[LookAlike]:
    """The pairs of people (by label) with a photo of each nearer than ``threshold``
    times ``1 + margin``, closest first."""
    vectors = np.asarray(vectors, np.float32)
    names, photos = people(np.asarray(labels))
    if len(names) < 2:
        return []
    limit = float(threshold) * (1 + margin)
    centres = np.stack([vectors[at].mean(axis=0) for at in photos]).astype(np.float32)
    _, near = nearest_neighbours(centres, NEAREST_PEOPLE)
    candidates = {(min(p, int(q)), max(p, int(q))) for p, row in enumerate(near) for q in row if q >= 0}
    out = []
    for p, q in sorted(candidates):
        found = bridges(vectors, photos[p], photos[q])
        if found[0].distance < limit:
            out.append(LookAlike(int(names[p]), int(names[q]), found[0].distance, limit, found))
    return sorted(out, key=lambda x: (x.distance, x.first, x.second))


def bridges(vectors: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = BRIDGES) -> tuple[Bridge, ...]:
    """The ``n`` closest pairs of photos, one from the indices ``a``, one from ``b``."""
    va, vb = vectors[a].astype(np.float64), vectors[b].astype(np.float64)
    # |x - y|^2 = |x|^2 + |y|^2 - 2 x.y: an (a, b) matrix, not an (a, b, dimension) one
    squared = (va ** 2).sum(1)[:, None] + (vb ** 2).sum(1)[None, :] - 2 * va @ vb.T
    d = np.sqrt(np.maximum(squared, 0))
    order = np.argsort(d, axis=None, kind="stable")[:n]
    return tuple(Bridge(int(a[i // len(b)]), int(b[i % len(b)]), float(d.flat[i])) for i in order)
