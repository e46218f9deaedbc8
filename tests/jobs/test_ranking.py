"""Ranking identities against brute force: every identity's distance is its closest
photo's, whatever the window the search starts with."""
from __future__ import annotations

import numpy as np
import pytest

from jobs.ranking import rank_identities
from storage.gallery import GalleryPhoto


class FlatIndex:
    """Brute-force nearest photos, ids ``-1`` beyond the stored ones."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.searches: list[int] = []

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries, k):
        self.searches.append(k)
        d = np.linalg.norm(queries[:, None, :] - self.vectors[None], axis=2)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d, order, 1), order.astype(np.int64), 7


def brute_force(vectors, people, photos, probe, k, threshold):
    """``(identity, distance, photo id, passes)`` of the ``k`` nearest identities."""
    best: dict[str, tuple[float, int]] = {}
    for i, v in enumerate(vectors):
        if i not in photos:
            continue
        d = float(np.linalg.norm(probe - v))
        if people[i] not in best or d < best[people[i]][0]:
            best[people[i]] = (d, i)
    ranked = sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))[:k]
    return [(name, d, i, d <= threshold) for name, (d, i) in ranked]


@pytest.mark.parametrize("seed", range(8))
def test_ranking_equals_brute_force_with_any_window(seed):
    rng = np.random.default_rng(seed)
    n, people_n = int(rng.integers(5, 120)), int(rng.integers(1, 15))
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    people = [f"p{int(rng.integers(people_n))}" for _ in range(n)]
    removed = set(rng.choice(n, size=int(rng.integers(0, n // 4 + 1)), replace=False).tolist())
    photos = {i: GalleryPhoto(i, f"/g/{i}.jpg", f"sha{i}", people[i]) for i in range(n) if i not in removed}
    probes = rng.normal(size=(int(rng.integers(1, 6)), 4)).astype(np.float32)
    k, window = int(rng.integers(1, 8)), int(rng.integers(1, 10))
    index = FlatIndex(vectors)
    ranked, version = rank_identities(index, photos, probes, k, 2.0, window=window, limit=10_000)
    assert version == 7
    for probe, matches in zip(probes, ranked):
        want = brute_force(vectors, people, photos, probe, k, 2.0)
        got = [(m.identity, m.distance, m.photo_id, m.passes) for m in matches]
        assert [g[0] for g in got] == [w[0] for w in want]
        assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-5)
        assert [g[2:] for g in got] == [w[2:] for w in want]
        assert [m.rank for m in matches] == list(range(1, len(matches) + 1))
        assert all(m.photo == f"/g/{m.photo_id}.jpg" for m in matches)


def test_the_window_widens_only_as_far_as_needed():
    """200 photos of one person nearest the probe, then another person: the first
    search (20 photos per identity wanted, or the window) is widened times 4 until
    both people are found, and no further."""
    vectors = np.array([[0.01 * i, 0] for i in range(200)] + [[5, 0]], np.float32)
    people = ["a"] * 200 + ["b"]
    photos = {i: GalleryPhoto(i, str(i), str(i), p) for i, p in enumerate(people)}
    index = FlatIndex(vectors)
    ranked, _ = rank_identities(index, photos, np.zeros((1, 2), np.float32), 2, None, window=2)
    assert [m.identity for m in ranked[0]] == ["a", "b"]
    assert index.searches == [40, 160, 201] and ranked[0][0].passes is None
    index.searches.clear()
    rank_identities(index, photos, np.zeros((1, 2), np.float32), 1, None, window=50)
    assert index.searches == [50]  # one identity wanted, one found: no widening


def test_a_limit_bounds_the_search_and_an_empty_index_ranks_nothing():
    vectors = np.zeros((30, 2), np.float32)
    photos = {i: GalleryPhoto(i, str(i), str(i), "a") for i in range(30)}
    index = FlatIndex(vectors)
    rank_identities(index, photos, np.ones((1, 2), np.float32), 5, 1.0, window=4, limit=10)
    assert max(index.searches) == 10
    ranked, _ = rank_identities(FlatIndex(np.zeros((0, 2), np.float32)), {}, np.ones((2, 2), np.float32), 3, 1.0)
    assert ranked == [[], []]
