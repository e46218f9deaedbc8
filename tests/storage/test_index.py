import numpy as np
import pytest

from storage.errors import IndexMismatch
from storage.index import (IndexBuildError, build_index, is_current, load_index, save_index,
                           search, sidecar_path)


def _data(n=3000, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), np.arange(n, dtype=np.int64) * 5 + 3


def _brute(vectors, ids, queries, k):
    d = np.sqrt(((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), ids[order]


def test_flat_equals_brute_force():
    vectors, ids = _data()
    queries = np.random.default_rng(1).normal(size=(20, 16)).astype(np.float32)
    dist, found = search(build_index(vectors, ids, "Flat"), queries, 10)
    ref_d, ref_i = _brute(vectors, ids, queries, 10)
    np.testing.assert_array_equal(found, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("factory", ["HNSW32", "IVF16,Flat"])
def test_approximate_reranked_by_exact_distance(factory):
    vectors, ids = _data()
    queries = vectors[:30] + 0.01
    dist, found = search(build_index(vectors, ids, factory), queries, 5, exact=False)
    ref_d, ref_i = _brute(vectors, ids, queries, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, ref_i)])
    assert recall >= 0.9
    assert np.all(np.diff(dist, axis=1) >= 0)  # sorted by exact distance
    # every returned distance is the exact euclidean distance of that id
    lookup = dict(zip(ids.tolist(), vectors))
    for q, row_d, row_i in zip(queries, dist, found):
        for d, i in zip(row_d, row_i):
            assert d == pytest.approx(np.linalg.norm(lookup[int(i)] - q), rel=1e-4, abs=1e-5)


def test_build_errors():
    vectors, ids = _data(n=10)
    with pytest.raises(IndexBuildError, match="at least 1024"):
        build_index(vectors, ids, "IVF1024,Flat")
    with pytest.raises(IndexBuildError, match="does not understand"):
        build_index(vectors, ids, "NotAnIndex")


def test_save_load_and_every_mismatch(tmp_path):
    vectors, ids = _data(n=100)
    path = tmp_path / "m.faiss"
    info = save_index(path, build_index(vectors, ids), "m", "Flat")
    assert info.count == 100 and info.dimension == 16
    index, loaded = load_index(path, model="m", dimension=16, ids=ids)
    assert index.ntotal == 100 and loaded == info

    with pytest.raises(IndexMismatch, match="model 'm'.*doctor --repair"):
        load_index(path, model="other")
    with pytest.raises(IndexMismatch, match="64-d.*doctor --repair"):
        load_index(path, model="m", dimension=64)
    with pytest.raises(IndexMismatch, match="database has 99"):
        load_index(path, model="m", ids=ids[:99])

    side = sidecar_path(path)
    good_side = side.read_text()
    side.write_text("{not json")
    with pytest.raises(IndexMismatch, match="corrupt.*doctor --repair"):
        load_index(path, model="m")
    side.write_text(good_side)

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatch, match="truncated.*doctor --repair"):
        load_index(path, model="m")
    path.unlink()
    with pytest.raises(IndexMismatch, match="missing"):
        load_index(path, model="m")


def test_empty_index_search():
    index = build_index(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    d, i = search(index, np.zeros((2, 4), np.float32), 3)
    assert (i == -1).all() and np.isinf(d).all()


def test_is_current_reads_only_the_sidecar_and_the_size(tmp_path):
    vectors, ids = _data(n=40)
    path = tmp_path / "m.faiss"
    assert not is_current(path, model="m", dimension=16, seq=7)  # no snapshot yet
    save_index(path, build_index(vectors, ids), "m", "Flat", seq=7)
    assert is_current(path, model="m", dimension=16, seq=7)
    assert is_current(path, model="m", dimension=16, seq=7, factory="Flat")
    assert not is_current(path, model="m", dimension=16, seq=8)  # a change after it
    assert not is_current(path, model="m", dimension=16, seq=7, factory="HNSW32")
    assert not is_current(path, model="other", dimension=16, seq=7)
    assert not is_current(path, model="m", dimension=32, seq=7)
    save_index(path, build_index(vectors, ids), "m", "Flat")  # written before the change log
    assert not is_current(path, model="m", dimension=16, seq=-1)
    save_index(path, build_index(vectors, ids), "m", "Flat", seq=7)
    path.write_bytes(path.read_bytes()[:-8])  # truncated
    assert not is_current(path, model="m", dimension=16, seq=7)
    sidecar_path(path).write_text("{not json")
    assert not is_current(path, model="m", dimension=16, seq=7)
    path.unlink()
    assert not is_current(path, model="m", dimension=16, seq=7)


def test_same_size_corruption_caught_by_full_check(tmp_path):
    vectors, ids = _data(n=50)
    path = tmp_path / "m.faiss"
    save_index(path, build_index(vectors, ids), "m", "Flat")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the vectors
    path.write_bytes(bytes(data))
    load_index(path, model="m")  # cheap load: size and sidecar agree
    with pytest.raises(IndexMismatch, match="does not match its sidecar"):
        load_index(path, model="m", full_check=True)


def test_snapshots_written_at_once_by_two_writers_never_load_mismatched(tmp_path):
    """Two servers snapshot the same index while a third loads it: the file and its
    sidecar always come from one writer (they are locked as a pair)."""
    import threading

    path = tmp_path / "m.faiss"
    rng = np.random.default_rng(0)
    small = build_index(rng.standard_normal((10, 8)).astype(np.float32), np.arange(10), "Flat")
    large = build_index(rng.standard_normal((300, 8)).astype(np.float32), np.arange(300), "Flat")
    save_index(path, small, "m", "Flat")
    stop, errors = threading.Event(), []

    def write(index):
        while not stop.is_set():
            save_index(path, index, "m", "Flat")

    def read():
        for _ in range(300):
            try:
                load_index(path, model="m")
            except IndexMismatch as exc:
                errors.append(str(exc))
        stop.set()

    threads = [threading.Thread(target=write, args=(i,)) for i in (small, large)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
