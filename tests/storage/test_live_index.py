"""The live index against brute-force numpy, for exact and HNSW indexes."""
import threading

import numpy as np
import pytest

from storage.index import load_index
from storage.live_index import LiveIndex, ReadWriteLock


def brute(live: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[int]:
    ids = np.array(sorted(live))
    d = np.sqrt(((np.stack([live[i] for i in ids]) - q) ** 2).sum(1))
    return ids[np.argsort(d, kind="stable")[:k]].tolist()


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_random_adds_and_removes_match_brute_force(factory, tmp_path):
    rng = np.random.default_rng(0)
    live: dict[int, np.ndarray] = {}
    index = LiveIndex.build(np.zeros((0, 8), np.float32), np.zeros(0, np.int64), "m", factory)
    next_id = 1
    for _ in range(200):
        if live and rng.random() < 0.3:
            gone = int(rng.choice(sorted(live)))
            del live[gone]
            index.remove(np.array([gone]))
        else:
            v = rng.normal(size=(1, 8)).astype(np.float32)
            live[next_id] = v[0]
            index.add(np.array([next_id]), v)
            next_id += 1
    assert index.ids().tolist() == sorted(live) and len(index) == len(live)
    if factory == "HNSW32":
        assert index.hidden_share > 0  # HNSW hides what it cannot remove
    for q in rng.normal(size=(20, 8)).astype(np.float32):
        d, ids, _ = index.search(q[None], 5)
        assert ids[0].tolist() == brute(live, q, 5)
        np.testing.assert_allclose(d[0], [np.linalg.norm(live[i] - q) for i in ids[0]], rtol=1e-5)
    path = tmp_path / "m.faiss"
    info = index.save(path)  # hidden vectors are dropped from the snapshot
    assert info.count == len(live) and index.hidden_share == 0
    loaded, _ = load_index(path, model="m", ids=np.array(sorted(live)))
    assert loaded.ntotal == len(live)


def test_read_write_lock_excludes_writers():
    lock, inside, seen = ReadWriteLock(), [], []

    def reader():
        with lock.reading():
            inside.append("r")
            seen.append(list(inside))
            inside.remove("r")

    def writer():
        with lock.writing():
            inside.append("w")
            seen.append(list(inside))
            inside.remove("w")

    threads = [threading.Thread(target=reader if i % 3 else writer) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(s == ["w"] or "w" not in s for s in seen)


def test_hnsw_keeps_a_few_removed_vectors_until_the_bound(tmp_path):
    from storage.live_index import COMPACT_SHARE

    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(100, 8)).astype(np.float32)
    ids = np.arange(1, 101)
    index = LiveIndex.build(vectors, ids, "m", "HNSW32")
    gone = np.arange(1, 1 + int(100 * COMPACT_SHARE))  # exactly at the bound: no rebuild
    index.remove(gone)
    path = tmp_path / "m.faiss"
    info = index.save(path)
    assert info.hidden == tuple(gone.tolist()) and info.count == 100 - len(gone)
    live_ids = np.setdiff1d(ids, gone)
    load_index(path, model="m", ids=live_ids)  # the sidecar describes the live ids
    raw, info = load_index(path, model="m", dimension=8)
    again = LiveIndex(raw, "m", info.factory)
    again._hidden.update(info.hidden)
    assert again.ids().tolist() == live_ids.tolist()
    _, found, _ = again.search(vectors[:20], 1)
    assert not np.isin(found, gone).any()
    again.remove(np.array([50]))  # past the bound: the next snapshot rebuilds
    assert again.save(path).hidden == ()
