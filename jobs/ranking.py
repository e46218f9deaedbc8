"""Ranking gallery identities for probe vectors: an identity's distance is that of its
closest gallery photo. The nearest photos are fetched in a window, widened only for
the probes that found fewer than ``k`` identities; a pure function of the index and
the photos it holds (tested against brute force)."""
from __future__ import annotations

from typing import Mapping, Protocol

import numpy as np

from storage.gallery import GalleryPhoto

from .answers import Match

SEARCH_WINDOW = 50
"""Photos fetched per search at least (``20 * k`` when larger); widened until ``k``
distinct identities are found, the gallery is exhausted or :data:`SEARCH_LIMIT`."""
SEARCH_LIMIT = 10_000
"""The most photos one search looks at: a ``k`` above the gallery's number of people
gets the people found among them, not a walk over the whole index."""


class Searchable(Protocol):
    """An index of photo vectors (``storage.live_index.LiveIndex``)."""

    def __len__(self) -> int: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Distances and ids of the ``k`` nearest (id ``-1``: none), and the version."""


def rank_identities(index: Searchable, photos: Mapping[int, GalleryPhoto], vectors: np.ndarray,
                    k: int, threshold: float | None, *, window: int | None = None,
                    limit: int | None = None) -> tuple[list[list[Match]], int]:
    """The ``k`` nearest identities of each vector (ties by name), each marked passing
    when its distance is at most ``threshold``, and the index version searched. A
    photo the index returns but ``photos`` no longer holds (removed meanwhile) is
    skipped. ``window`` and ``limit``: :data:`SEARCH_WINDOW` and :data:`SEARCH_LIMIT`."""
    window = SEARCH_WINDOW if window is None else window
    limit = SEARCH_LIMIT if limit is None else limit
    vectors = np.asarray(vectors, np.float32)
    wanted = min(len(index), limit, max(k * 20, window))
    best: list[dict[str, tuple[float, GalleryPhoto]]] = [{} for _ in vectors]
    todo, version = list(range(len(vectors))), 0
    while todo:
        dist, ids, version = index.search(vectors[todo], wanted)
        for row, row_dist, row_ids in zip(todo, dist, ids):
            best[row] = nearest_identities(row_dist, row_ids, photos)
        size = len(index)
        if wanted >= min(size, limit):
            break
        todo = [row for row in todo if len(best[row]) < k]
        wanted = min(size, limit, wanted * 4)
    return [ranked_matches(nearest, k, threshold) for nearest in best], version


def nearest_identities(distances: np.ndarray, ids: np.ndarray, photos: Mapping[int, GalleryPhoto]
                       ) -> dict[str, tuple[float, GalleryPhoto]]:
    """Each identity among the photos found, with its closest photo and distance."""
    nearest: dict[str, tuple[float, GalleryPhoto]] = {}
    for d, i in zip(distances, ids):
        photo = photos.get(int(i)) if i >= 0 else None
        if photo is None:  # removed between the search and this lookup
            continue
        if photo.identity not in nearest or d < nearest[photo.identity][0]:
            nearest[photo.identity] = (float(d), photo)
    return nearest


def ranked_matches(nearest: Mapping[str, tuple[float, GalleryPhoto]], k: int,
                   threshold: float | None) -> list[Match]:
    """The ``k`` closest identities of :func:`nearest_identities`, ranked from 1."""
    ranked = sorted(nearest.items(), key=lambda kv: (kv[1][0], kv[0]))[:k]
    return [Match(r + 1, name, d, photo.path, None if threshold is None else d <= threshold,
                  photo.image_id)
            for r, (name, (d, photo)) in enumerate(ranked)]
