"""Grouping face vectors into people: Chinese whispers over a k-nearest-neighbour
graph, and BCubed scores against true labels.

The graph links each vector to at most ``k`` neighbours within ``threshold``
(FAISS: exact below :data:`EXACT_LIMIT` vectors, an inverted-file index above, so
memory grows with ``n * k``, never ``n * n``). Chinese whispers (Biemann 2006; the
algorithm dlib ships for faces) lets every vector take the label most of its
neighbours carry (weighted by closeness), in random order, until nothing changes. Labels are updated a
chunk of vectors at a time with NumPy, so a million vectors take seconds per round.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .defaults import DEFAULT_MIN_SIZE, DEFAULT_NEIGHBOURS
from .errors import VerifierError

DEFAULT_ROUNDS = 50
"""Chinese whispers rounds at most (it stops as soon as no label changes)."""
DEFAULT_RESTARTS = 5
"""Chinese whispers runs per clustering (random orders); the best split by
modularity is kept. One run merged two look-alike seed people in some orders."""
EXACT_LIMIT = 50_000
"""Up to this many vectors the neighbours are exact (brute force)."""
UNCLUSTERED = -1


class ClusteringError(VerifierError):
    """Vectors that cannot be clustered (wrong shape, not finite)."""


@dataclass(frozen=True)
class Graph:
    """An undirected graph in compressed rows: the neighbours of vector ``i`` are
    ``targets[starts[i]:starts[i + 1]]`` at ``distances[...]``."""

    starts: np.ndarray
    targets: np.ndarray
    distances: np.ndarray

    @property
    def size(self) -> int:
        return len(self.starts) - 1

    @property
    def edges(self) -> int:
        return len(self.targets) // 2


def _check(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ClusteringError(f"vectors must be a 2-d array, not shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ClusteringError("vectors hold NaN or infinite values")
    return vectors


def nearest_neighbours(vectors: np.ndarray, k: int, *, exact_limit: int = EXACT_LIMIT,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's ``k`` nearest other vectors: euclidean distances and indices
    (``-1`` where fewer exist), shapes ``(n, k)``. Exact up to ``exact_limit``
    vectors; above, an IVF index probing enough lists to find nearly every close
    neighbour."""
    import faiss

    vectors = _check(vectors)
    n, dim = vectors.shape
    k = max(1, min(k, n - 1)) if n > 1 else 1
    if n <= exact_limit:
        index = faiss.IndexFlatL2(dim)
    else:
        lists = int(4 * np.sqrt(n))
        quantizer = faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists)
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(n, size=min(n, lists * 64), replace=False)]
        index.train(sample)
        index.nprobe = 16
    index.add(vectors)
    squared, ids = index.search(vectors, k + 1)
    # drop each vector itself (or, where it was not returned, the farthest hit)
    drop = ids == np.arange(n)[:, None]
    drop[~drop.any(axis=1), -1] = True
    squared, ids = squared[~drop].reshape(n, k), ids[~drop].reshape(n, k)
    distances = np.sqrt(np.maximum(squared, 0)).astype(np.float32)
    distances[ids < 0] = np.inf
    return distances, ids


def neighbour_graph(vectors: np.ndarray, threshold: float, k: int = DEFAULT_NEIGHBOURS, *,
                    exact_limit: int = EXACT_LIMIT) -> Graph:
    """The undirected graph linking each vector to its ``k`` nearest neighbours
    that lie within ``threshold`` (a link found from either end counts)."""
    vectors = _check(vectors)
    n = len(vectors)
    if n < 2:
        return Graph(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    distances, ids = nearest_neighbours(vectors, k, exact_limit=exact_limit)
    rows = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1])
    cols = ids.ravel().astype(np.int64)
    dist = distances.ravel()
    close = (cols >= 0) & (dist <= threshold)
    a, b, dist = rows[close], cols[close], dist[close]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, first = np.unique(lo * n + hi, return_index=True)
    lo, hi, dist = key // n, key % n, dist[first]
    src = np.concatenate([lo, hi])
    dst = np.concatenate([hi, lo])
    dist = np.concatenate([dist, dist])
    order = np.argsort(src, kind="stable")
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=starts[1:])
    return Graph(starts, dst[order], dist[order].astype(np.float32))


def chinese_whispers(graph: Graph, *, weights: np.ndarray | None = None,
                     rounds: int = DEFAULT_ROUNDS, seed: int = 0,
                     chunk: int | None = None) -> np.ndarray:
    """A label per vertex: each vertex, in a random order every round, takes the
    label with the most weight among its neighbours (``weights`` per entry of
    ``graph.targets``, default 1 each; ties: the smallest label), until a round
    changes nothing or ``rounds`` pass. Vertices are updated ``chunk`` at a time
    (default: 1/64 of the graph, at least 1): each sees the labels the chunks before
    it chose this round."""
    n = graph.size
    labels = np.arange(n, dtype=np.int64)
    degree = np.diff(graph.starts)
    active = np.flatnonzero(degree > 0)
    if not len(active):
        return labels
    rng = np.random.default_rng(seed)
    step = chunk or max(1, len(active) // 64)
    for _ in range(rounds):
        changed = 0
        order = rng.permutation(active)
        for at in range(0, len(order), step):
            nodes = order[at:at + step]
            counts = degree[nodes]
            owner = np.repeat(np.arange(len(nodes)), counts)
            # the positions of every neighbour of these nodes in graph.targets
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            edges = np.repeat(graph.starts[nodes], counts) + offsets
            heard = labels[graph.targets[edges]]
            pairs, inverse = np.unique(owner * n + heard, return_inverse=True)
            votes = np.bincount(inverse.ravel(), weights=None if weights is None else weights[edges],
                                minlength=len(pairs))
            who, label = pairs // n, pairs % n
            # per node: most votes, then smallest label
            best = np.lexsort((label, -votes, who))
            first = np.ones(len(best), bool)
            first[1:] = who[best][1:] != who[best][:-1]
            chosen = label[best][first]
            changed += int((labels[nodes] != chosen).sum())
            labels[nodes] = chosen
        if not changed:
            break
    return labels


def relabel(labels: np.ndarray, min_size: int = DEFAULT_MIN_SIZE) -> np.ndarray:
    """Labels renumbered 0, 1, ... from the largest group (ties: the group whose
    first member comes first); groups smaller than ``min_size`` become
    :data:`UNCLUSTERED`."""
    labels = np.asarray(labels)
    out = np.full(len(labels), UNCLUSTERED, np.int64)
    if not len(labels):
        return out
    groups, first, inverse, sizes = np.unique(labels, return_index=True, return_inverse=True,
                                              return_counts=True)
    order = np.lexsort((first, -sizes))
    rank = np.full(len(groups), UNCLUSTERED, np.int64)
    kept = order[sizes[order] >= min_size]
    rank[kept] = np.arange(len(kept))
    return rank[inverse.ravel()]


def cluster_vectors(vectors: np.ndarray, threshold: float, *, k: int = DEFAULT_NEIGHBOURS,
                    min_size: int = DEFAULT_MIN_SIZE, seed: int = 0,
                    restarts: int = DEFAULT_RESTARTS, exact_limit: int = EXACT_LIMIT) -> np.ndarray:
    """Group vectors into people: a label per vector, 0 for the largest group,
    :data:`UNCLUSTERED` for vectors in groups under ``min_size``. Chinese whispers
    runs ``restarts`` times (seeds ``seed``, ``seed + 1``, ...) and the grouping
    with the highest :func:`modularity` wins."""
    graph = neighbour_graph(vectors, threshold, k, exact_limit=exact_limit)
    weights = closeness(graph, threshold)
    runs = [chinese_whispers(graph, weights=weights, seed=seed + r) for r in range(max(1, restarts))]
    best = max(runs, key=lambda labels: modularity(graph, weights, labels)) if len(runs) > 1 else runs[0]
    return relabel(best, min_size)


def modularity(graph: Graph, weights: np.ndarray, labels: np.ndarray) -> float:
    """Newman's modularity of a grouping of a weighted graph: the share of edge
    weight inside groups minus what random wiring with the same degrees would put
    there (higher is a better split)."""
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    labels = np.asarray(labels)
    source = np.repeat(np.arange(graph.size), np.diff(graph.starts))
    degree = np.bincount(source, weights=weights, minlength=graph.size)
    inside = float(weights[labels[source] == labels[graph.targets]].sum())
    _, group = np.unique(labels, return_inverse=True)
    spread = np.bincount(group.ravel(), weights=degree)
    return inside / total - float(((spread / total) ** 2).sum())


def closeness(graph: Graph, threshold: float) -> np.ndarray:
    """Edge weights ``1 - distance / threshold`` (a tiny floor at the threshold):
    close neighbours outvote far ones. On the seed photos' dlib vectors this keeps
    two look-alike people apart where equal weights merge them in some random
    orders (``benchmarks/cluster_quality.py``)."""
    return np.maximum(1.0 - graph.distances / threshold, 1e-6)


def bcubed(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """BCubed precision, recall and F of a clustering against true labels (Amigó et
    al. 2009): for each item, the share of its cluster that is its person
    (precision) and the share of its person that is in its cluster (recall),
    averaged over items. :data:`UNCLUSTERED` items count as clusters of one."""
    truth = np.asarray(truth)
    predicted = np.asarray(predicted).astype(np.int64).copy()
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ClusteringError("truth and predicted must be 1-d and of one length")
    n = len(truth)
    if not n:
        raise ClusteringError("no items to score")
    alone = predicted == UNCLUSTERED
    predicted[alone] = predicted.max(initial=0) + 1 + np.arange(int(alone.sum()))
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(predicted, return_inverse=True)
    t, p = t.ravel(), p.ravel()
    both, together = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)
    in_truth = np.bincount(t)[both // (p.max() + 1)]
    in_cluster = np.bincount(p)[both % (p.max() + 1)]
    # every item of a (person, cluster) cell scores together/cluster and together/person
    precision = float((together * together / in_cluster).sum() / n)
    recall = float((together * together / in_truth).sum() / n)
    return precision, recall, 2 * precision * recall / (precision + recall)
