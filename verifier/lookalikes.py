"""Look-alikes: two people of a gallery who sit closer to each other than their own
photos are spread, the pairs a user should check before trusting the names they get
(siblings, a child and a parent, one person enrolled under two names). Nothing is
merged: the pairs are listed with the photos that bridge them.

Each person is a centre (the mean of their photos' vectors) and a *radius*: the 90th
percentile of their photos' distances to it (widened by ``sqrt(n / (n - 1))`` for
``n`` photos, as a mean drawn from few photos sits closer to them than the person's
true centre), and never under half the matching threshold (the region in which one
photo matches another). Two people are listed when their centres are nearer
than the sum of their radii: their photos' regions overlap. Centres are compared
with :func:`verifier.clustering.nearest_neighbours`, so a gallery of many people is
checked without comparing every pair of them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clustering import nearest_neighbours

RADIUS_QUANTILE = 0.9
"""Which of a person's photo-to-centre distances is their radius."""
NEAREST_PEOPLE = 10
"""The nearest other people each person is compared with."""
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
    """Two people (labels, ``first < second``) whose centres are ``distance`` apart,
    under ``overlap`` (the sum of their radii), and their closest photos."""

    first: int
    second: int
    distance: float
    overlap: float
    bridges: tuple[Bridge, ...]


def people(vectors: np.ndarray, labels: np.ndarray, threshold: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, centres, radii)``, one row per person, labels sorted."""
    names = np.unique(labels)
    centres = np.stack([vectors[labels == name].mean(axis=0) for name in names]).astype(np.float32)
    radii = np.full(len(names), threshold / 2, np.float32)
    for n, name in enumerate(names):
        own = vectors[labels == name]
        if len(own) > 1:
            spread = np.quantile(np.linalg.norm(own - centres[n], axis=1), RADIUS_QUANTILE)
            radii[n] = max(radii[n], spread * np.sqrt(len(own) / (len(own) - 1)))
    return names, centres, radii


def look_alikes(vectors: np.ndarray, labels: np.ndarray, threshold: float) -> list[LookAlike]:
    """The pairs of people (by label) whose photos' regions overlap, the most
    overlapping first; ``threshold`` sizes a single photo's region."""
    vectors = np.asarray(vectors, np.float32)
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return []
    names, centres, radii = people(vectors, labels, threshold)
    distances, ids = nearest_neighbours(centres, NEAREST_PEOPLE)
    pairs: dict[tuple[int, int], float] = {}
    for p, (row_d, row_i) in enumerate(zip(distances, ids)):
        for d, q in zip(row_d, row_i):
            if q >= 0 and d < radii[p] + radii[q]:
                pairs[(min(p, int(q)), max(p, int(q)))] = float(d)
    out = [LookAlike(int(names[p]), int(names[q]), d, float(radii[p] + radii[q]),
                     bridges(vectors, labels, names[p], names[q]))
           for (p, q), d in pairs.items()]
    return sorted(out, key=lambda x: (x.distance / x.overlap, x.first, x.second))


def bridges(vectors: np.ndarray, labels: np.ndarray, first, second, n: int = BRIDGES) -> tuple[Bridge, ...]:
    """The ``n`` closest pairs of photos, one of each of two people."""
    a, b = np.flatnonzero(labels == first), np.flatnonzero(labels == second)
    d = np.linalg.norm(vectors[a][:, None, :] - vectors[b][None, :, :], axis=2)
    order = np.argsort(d, axis=None, kind="stable")[:n]
    return tuple(Bridge(int(a[i // len(b)]), int(b[i % len(b)]), float(d.flat[i])) for i in order)
