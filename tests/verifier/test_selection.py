"""Choosing between the trained model and its start, the calibrated threshold, the
open-set splits and the identity adapter, on hand-built inputs."""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from verifier import metrics
from verifier.pairs import Pairs, make_pairs
from verifier.selection import ModelScores, gallery_pairs, is_better, score


def scores(*errors, tar=1.0) -> ModelScores:
    return ModelScores(*errors, tar, 1e-4)


def test_the_trained_model_is_kept_only_when_no_rate_is_worse_and_one_is_lower():
    start = scores(0.01, 0.02, 0.03)
    assert is_better(scores(0.01, 0.01, 0.03), start)
    assert not is_better(scores(0.01, 0.02, 0.03), start)  # a tie keeps the start
    assert not is_better(scores(0.0, 0.0, 0.031), start)  # worse on unseen people
    assert is_better(scores(0.005, None, None), scores(0.01, 0.5, 0.5))  # only shared figures
    assert not is_better(scores(None, None, None), start)


def test_score_on_hand_built_embeddings():
    # photos 0,1 person A; 2,3 person B (unseen); 1-D embeddings
    clean = np.array([[0.0], [0.1], [1.0], [1.3]], np.float32)
    pairs = Pairs(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 2, 3, 3]),
                  np.array([1, 0, 0, 0, 0, 1], np.int8))
    unseen = np.array([False, False, True, True])
    s = score(clean, [clean + 5.0], pairs, unseen, 0.01)
    assert s.eer == 0.0 and s.tar == 1.0
    assert s.eer_unseen is None  # one pair of unseen people: one class only
    assert s.eer_degraded is not None and s.eer_degraded > 0.0


def test_gallery_pairs_are_each_photo_against_every_gallery_photo():
    clean = np.array([[0.0], [0.1], [1.0], [1.3], [3.0]], np.float32)
    people = np.array(["a", "a", "b", "b", "c"])
    # photos 1 (a) and 3 (b) against the gallery 0 (a), 2 (b), 4 (c)
    d, same = gallery_pairs(clean, clean, np.array([1, 3]), np.array([0, 2, 4]), people)
    assert d == pytest.approx([0.1, 0.9, 2.9, 1.3, 0.3, 1.7], abs=1e-6)
    assert same.tolist() == [True, False, False, False, True, False]
    # the probes embedded otherwise (a degraded version) against the clean gallery
    d2, _ = gallery_pairs(clean + 1.0, clean, np.array([1]), np.array([0, 4]), people)
    assert d2 == pytest.approx([1.1, 1.9], abs=1e-6)
    assert gallery_pairs(clean, clean, np.array([], int), np.array([0]), people)[0].size == 0


def test_more_negatives_and_positives_set_the_threshold_and_its_recall():
    clean = np.array([[0.0], [0.1], [1.0], [1.3]], np.float32)
    pairs = Pairs(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 2, 3, 3]),
                  np.array([1, 0, 0, 0, 0, 1], np.int8))
    unseen = np.zeros(4, bool)
    # min_tail 0: the empirical threshold, under the nearest negative
    alone = score(clean, [], pairs, unseen, 0.01, min_tail=0)
    assert 0.3 <= alone.threshold < 0.9
    assert alone.recall == 1.0  # pairs 0-1 (0.1) and 2-3 (0.3)
    more = score(clean, [], pairs, unseen, 0.01, min_tail=0, negatives=np.array([0.2]),
                 positives=np.array([0.05]))
    assert 0.1 <= more.threshold < 0.2  # under the closer impostor
    assert more.recall == pytest.approx(2 / 3)  # 0.1 and 0.05 of 0.1, 0.3, 0.05
    assert more.eer == alone.eer  # the error rates are the pairs' own


def test_calibrated_threshold_uses_the_empirical_one_with_enough_negatives():
    rng = np.random.default_rng(0)
    d = np.r_[rng.uniform(0, 0.5, 100), rng.uniform(0.6, 2.0, 10_000)]
    y = np.r_[np.ones(100), np.zeros(10_000)].astype(int)
    t, rule = metrics.calibrated_threshold(d, y, 1e-2)
    assert t == metrics.far_threshold(d, y, 1e-2) and "normal fit" not in rule


def test_calibrated_threshold_extrapolates_a_normal_fit_of_few_negatives():
    unit = NormalDist()
    # negatives exactly at normal quantiles of N(1, 0.1): the fit recovers it
    q = np.linspace(0.0005, 0.9995, 1000)
    negatives = np.array([NormalDist(1.0, 0.1).inv_cdf(p) for p in q])
    d = np.r_[np.full(10, 0.66), negatives]  # the empirical cut sits just below 0.671
    y = np.r_[np.ones(10), np.zeros(1000)].astype(int)
    t, rule = metrics.calibrated_threshold(d, y, 1e-5)
    assert "normal fit of 1000" in rule
    assert t == pytest.approx(1.0 + 0.1 * unit.inv_cdf(1e-5), abs=0.005)
    assert t < negatives.min()
    # no same-person pair at all: negatives alone set a false-accept rate
    t2, _ = metrics.calibrated_threshold(negatives, np.zeros(1000, int), 1e-5)
    assert 0 < t2 <= t + 1e-12
    with pytest.raises(metrics.MetricError):
        metrics.calibrated_threshold(np.ones(3), np.ones(3, int), 1e-5)


def test_open_set_splits_share_no_photo_and_hold_people_out():
    ids = [f"p{i}" for i in range(10) for _ in range(6)]
    p = make_pairs(ids, "open-set", seed=3)
    train, val, test = (set(p.split(s).photos().tolist()) for s in ("train", "validation", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    people = np.array(ids)
    trained = set(people[list(train)])
    held = set(people) - trained
    assert len(held) == 2 and held <= set(people[list(val)]) and held <= set(people[list(test)])
    assert p.validation.positives > 0 and p.test.positives > 0
    assert p.counts() == make_pairs(ids, "open-set", seed=3).counts()  # seeded


def test_adapter_starts_at_the_identity_and_is_pulled_back():
    import keras

    from verifier.layers import Adapter

    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    layer = Adapter(0.5)
    np.testing.assert_allclose(np.asarray(layer(x)), x, atol=1e-6)
    assert float(sum(layer.losses)) == pytest.approx(0.0, abs=1e-9)
    layer.kernel.assign(np.eye(7, dtype=np.float32) * 2.0)
    assert float(sum(layer.losses)) == pytest.approx(0.5 * 7.0)
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert again.pull == 0.5


def test_a_degraded_chip_keeps_its_size():
    from verifier.degrade import DEGRADATIONS, degrade_chip

    chip = np.random.default_rng(1).integers(0, 255, (150, 150, 3)).astype(np.uint8)
    for name in DEGRADATIONS:
        out = degrade_chip(chip, name, np.random.default_rng(2))
        assert out.shape == chip.shape and out.dtype == np.uint8
        assert not np.array_equal(out, chip)


def test_fewer_pairs_accepted_at_its_own_threshold_keeps_the_start():
    start = ModelScores(0.02, 0.04, 0.01, 1.0, 1e-4, 0.5, "far", 0.97)
    better_rates = ModelScores(0.01, 0.02, 0.01, 1.0, 1e-4, 0.4, "far", 0.90)
    assert not is_better(better_rates, start)
    assert is_better(ModelScores(0.01, 0.02, 0.01, 1.0, 1e-4, 0.6, "far", 0.97), start)


def test_score_calibrates_and_measures_recall_at_its_threshold():
    rng = np.random.default_rng(0)
    clean = np.r_[rng.normal(0, 0.01, (5, 2)), rng.normal(3, 0.01, (5, 2))].astype(np.float32)
    i, j = np.triu_indices(10, 1)
    y = ((i < 5) == (j < 5)).astype(np.int8)
    s = score(clean, [], Pairs(i, j, y), np.zeros(10, bool), 0.01)
    assert s.threshold is not None and s.recall == 1.0 and s.threshold < 3.0
