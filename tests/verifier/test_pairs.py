import numpy as np
import pytest

from verifier.errors import ProtocolError
from verifier.pairs import make_pairs, split_sizes

IDS_128 = [f"p{i // 8:02d}" for i in range(128)]


def _set(p):
    return set(zip(p.first.tolist(), p.second.tolist()))


def test_seed_protocol_counts():
    ps = make_pairs(IDS_128, "seed", seed=3)
    assert (len(ps.train), len(ps.validation), len(ps.test)) == (5689, 1625, 814)
    assert sum(len(ps.split(s)) for s in ("train", "validation", "test")) == 16256 // 2
    all_pairs = _set(ps.train) | _set(ps.validation) | _set(ps.test)
    assert len(all_pairs) == 8128  # no pair twice
    assert all(a != b for a, b in all_pairs)
    for split in ("train", "validation", "test"):
        p = ps.split(split)
        expected = (np.array(IDS_128)[p.first] == np.array(IDS_128)[p.second]).astype(int)
        assert np.array_equal(p.label, expected)
    counts = ps.counts()
    assert counts["train"]["positive"] + counts["train"]["negative"] == 5689


def test_seed_protocol_is_deterministic_per_seed():
    a, b, c = (make_pairs(IDS_128, "seed", seed=s) for s in (1, 1, 2))
    assert _set(a.test) == _set(b.test)
    assert _set(a.test) != _set(c.test)


def test_image_disjoint():
    ps = make_pairs(IDS_128, "image-disjoint", seed=0)
    photos = [set(ps.split(s).photos().tolist()) for s in ("train", "validation", "test")]
    assert not (photos[0] & photos[1]) and not (photos[0] & photos[2]) and not (photos[1] & photos[2])
    assert [len(p) for p in photos] == [89, 25, 14]
    assert len(ps.train) == 89 * 88 // 2 and len(ps.test) == 14 * 13 // 2


def test_identity_disjoint():
    ps = make_pairs(IDS_128, "identity-disjoint", seed=0)
    ids = np.array(IDS_128)
    people = [set(ids[ps.split(s).photos()]) for s in ("train", "validation", "test")]
    assert [len(p) for p in people] == [11, 3, 2]
    assert not (people[0] & people[2]) and not (people[0] & people[1])
    assert len(ps.test) == 16 * 15 // 2


def test_split_sizes():
    assert split_sizes(8128) == (5689, 1625, 814)
    assert split_sizes(10) == (7, 2, 1)


def test_errors():
    with pytest.raises(ProtocolError, match="unknown protocol"):
        make_pairs(IDS_128, "nope")
    with pytest.raises(ProtocolError, match="at least 3 identities"):
        make_pairs(["a", "a", "b", "b"], "identity-disjoint")
    with pytest.raises(ProtocolError):
        make_pairs(["a"], "seed")


def test_round_trip_arrays():
    from verifier.pairs import PairSet

    ps = make_pairs(IDS_128, "seed", seed=0)
    back = PairSet.from_arrays("seed", 0, ps.to_arrays())
    assert _set(back.validation) == _set(ps.validation)
    assert np.array_equal(back.test.label, ps.test.label)
