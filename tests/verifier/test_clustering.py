"""Clustering maths on hand-built cases with exact answers, the k-NN graph against
brute force, and seeded synthetic mixtures."""
import numpy as np
import pytest

from verifier.clustering import (UNCLUSTERED, ClusteringError, Graph, bcubed, chinese_whispers,
                                 closeness, cluster_vectors, modularity, nearest_neighbours,
                                 neighbour_graph, relabel)
from verifier.synthetic import identity_mixture


def graph_of(n, edges):
    """An unweighted undirected graph from ``(a, b)`` pairs."""
    src = [a for a, b in edges] + [b for a, b in edges]
    dst = [b for a, b in edges] + [a for a, b in edges]
    order = np.argsort(src, kind="stable")
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=starts[1:])
    return Graph(starts, np.array(dst)[order], np.ones(len(src), np.float32))


def test_bcubed_exact_values():
    truth = np.array([0, 0, 0, 1, 1])
    assert bcubed(truth, np.array([5, 5, 5, 7, 7])) == (1.0, 1.0, 1.0)
    # everything in one cluster: precision per item 3/5 or 2/5, recall 1
    p, r, f = bcubed(truth, np.zeros(5, int))
    assert p == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5) and r == 1.0
    assert f == pytest.approx(2 * p / (p + 1))
    # every item alone (unclustered): precision 1, recall (3 * 1/3 + 2 * 1/2) / 5
    p, r, _ = bcubed(truth, np.full(5, UNCLUSTERED))
    assert p == 1.0 and r == pytest.approx(2 / 5)
    # one item misplaced: cluster A = {0,0}, cluster B = {0,1,1}
    p, r, _ = bcubed(truth, np.array([0, 0, 1, 1, 1]))
    assert p == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert r == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    with pytest.raises(ClusteringError):
        bcubed(truth, np.zeros(4, int))


def test_relabel_orders_by_size_and_drops_small_groups():
    labels = np.array([9, 4, 4, 9, 9, 7, 3, 3])
    assert relabel(labels, 1).tolist() == [0, 1, 1, 0, 0, 3, 2, 2]
    assert relabel(labels, 2).tolist() == [0, 1, 1, 0, 0, UNCLUSTERED, 2, 2]
    assert relabel(labels, 4).tolist() == [UNCLUSTERED] * 8


def test_chinese_whispers_splits_two_cliques_joined_by_one_edge():
    clique = lambda nodes: [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    g = graph_of(9, clique([0, 1, 2, 3]) + clique([4, 5, 6, 7]) + [(3, 4)])  # 8 alone
    for seed in range(10):
        labels = chinese_whispers(g, seed=seed)
        assert len(set(labels[:4])) == 1 and len(set(labels[4:8])) == 1
        assert labels[0] != labels[4] and labels[8] == 8
        assert relabel(labels, 2)[8] == UNCLUSTERED


def test_modularity_exact_value_and_preference():
    # two disjoint edges: grouping each edge gives 1 - 2 * (1/2)^2 = 0.5
    g = graph_of(4, [(0, 1), (2, 3)])
    w = np.ones(4)
    assert modularity(g, w, np.array([0, 0, 1, 1])) == pytest.approx(0.5)
    assert modularity(g, w, np.array([0, 0, 0, 0])) == pytest.approx(0.0)
    assert modularity(g, w, np.array([0, 1, 0, 1])) < 0


def test_nearest_neighbours_equal_brute_force():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((60, 8)).astype(np.float32)
    dist, ids = nearest_neighbours(v, 5)
    full = np.linalg.norm(v[:, None] - v[None], axis=2)
    np.fill_diagonal(full, np.inf)
    want = np.argsort(full, axis=1)[:, :5]
    assert (ids == want).all()
    assert np.allclose(dist, np.take_along_axis(full, want, 1), atol=1e-4)


def test_graph_holds_exactly_the_close_pairs_when_k_covers_everyone():
    v, _ = identity_mixture(6, 5, 16, spread=0.1, seed=2)
    threshold = 0.45
    g = neighbour_graph(v, threshold, k=len(v))
    full = np.linalg.norm(v[:, None] - v[None], axis=2)
    want = {(a, b) for a in range(len(v)) for b in range(len(v)) if a != b and full[a, b] <= threshold}
    got = {(a, int(b)) for a in range(g.size) for b in g.targets[g.starts[a]:g.starts[a + 1]]}
    assert got == want and g.edges == len(want) // 2
    assert (closeness(g, threshold) > 0).all() and (closeness(g, threshold) <= 1).all()


def test_approximate_graph_finds_nearly_every_exact_edge():
    v, _ = identity_mixture(300, (2, 12), seed=4)
    exact = neighbour_graph(v, 0.6, 10)
    approx = neighbour_graph(v, 0.6, 10, exact_limit=100)  # IVF
    pairs = lambda g: {(a, int(b)) for a in range(g.size) for b in g.targets[g.starts[a]:g.starts[a + 1]]}
    assert len(pairs(approx) & pairs(exact)) >= 0.99 * len(pairs(exact))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_people_are_recovered(seed):
    v, truth = identity_mixture(200, (1, 15), seed=seed)
    labels = cluster_vectors(v, 0.6, min_size=1)
    assert bcubed(truth, labels)[2] >= 0.999
    # singletons become unclustered with min_size 2, and nothing else does
    alone = cluster_vectors(v, 0.6) == UNCLUSTERED
    sizes = np.bincount(truth)
    assert alone.sum() == (sizes == 1).sum()


def test_same_seed_same_groups_and_tiny_inputs():
    v, _ = identity_mixture(30, 4, seed=1)
    assert (cluster_vectors(v, 0.6, seed=5) == cluster_vectors(v, 0.6, seed=5)).all()
    assert cluster_vectors(np.zeros((0, 4)), 0.6).tolist() == []
    assert cluster_vectors(np.zeros((1, 4)), 0.6, min_size=1).tolist() == [0]
    with pytest.raises(ClusteringError):
        cluster_vectors(np.full((3, 2), np.nan), 0.6)
