import numpy as np
import pytest

from verifier import metrics as m
from verifier.errors import MetricError

D = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
Y = np.array([1, 1, 0, 1, 0, 0])


def test_confusion_and_threshold_metrics():
    c = m.confusion(D, Y, 0.35)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 2, 1)
    r = m.threshold_metrics(D, Y, 0.35)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["balanced_accuracy"] == pytest.approx(2 / 3)
    assert r["far"] == pytest.approx(1 / 3)
    # boundary: distance equal to the threshold counts as same
    assert m.confusion([0.5], [1], 0.5).tp == 1


def test_precision_undefined_is_none():
    r = m.threshold_metrics(D, Y, 0.0)
    assert r["precision"] is None and r["recall"] == 0.0 and r["f1"] is None


def test_roc_auc_exact():
    # positives at 0.1, 0.2, 0.4; negatives 0.3, 0.5, 0.6 -> 8 of 9 ordered right
    assert m.roc_auc(D, Y) == pytest.approx(8 / 9)
    assert m.roc_auc([0.1, 0.2], [1, 0]) == 1.0
    assert m.roc_auc([0.2, 0.1], [1, 0]) == 0.0


def test_roc_auc_ties_count_half():
    assert m.roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert m.roc_auc([0.1, 0.5, 0.5, 0.9], [1, 1, 0, 0]) == pytest.approx((2 + 1 + 0.5) / 4)


def test_roc_curve_points():
    far, tar, thr = m.roc_curve(D, Y)
    assert far.tolist() == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert tar.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert thr[0] == -np.inf


def test_eer_exact():
    # perfectly separated: 0; the example above: crossing at FAR = FRR = 1/3
    assert m.eer([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert m.eer(D, Y) == pytest.approx(1 / 3)
    # fully inverted: 1
    assert m.eer([0.9, 0.1], [1, 0]) == pytest.approx(1.0)


def test_tar_at_far():
    assert m.tar_at_far(D, Y, 0.0) == pytest.approx(2 / 3)
    assert m.tar_at_far(D, Y, 1 / 3) == pytest.approx(1.0)


def test_best_accuracy_threshold():
    t = m.best_accuracy_threshold([0.1, 0.2, 0.5, 0.6], [1, 1, 0, 0])
    assert t == pytest.approx(0.35)
    t = m.best_accuracy_threshold(D, Y)
    assert m.threshold_metrics(D, Y, t)["accuracy"] == pytest.approx(5 / 6)
    assert t == pytest.approx(0.25)  # ties (0.25 and 0.45) go to the smallest


def test_far_threshold_is_loosest_within_target():
    d = np.array([0.1, 0.2, 0.5, 0.6, 0.7, 0.8])
    y = np.array([1, 1, 0, 0, 0, 0])
    assert m.far_threshold(d, y, 0.25) == pytest.approx(0.55)
    assert m.far_threshold(d, y, 0.0) == pytest.approx(0.35)
    assert m.far_threshold(d, y, 1.0) == pytest.approx(1.8)
    for target in (0.0, 0.25, 0.5):
        t = m.far_threshold(d, y, target)
        assert m.threshold_metrics(d, y, t)["far"] <= target


def test_single_class_is_a_clear_error():
    with pytest.raises(MetricError, match="both kinds"):
        m.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(MetricError, match="different-person"):
        m.eer([0.1, 0.2], [0, 0])
    with pytest.raises(MetricError, match="no pairs"):
        m.confusion([], [], 0.5)
    with pytest.raises(MetricError, match="NaN"):
        m.roc_auc([np.nan, 0.2], [1, 0])


def test_kfold():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    d = np.where(y == 1, 0.2, 0.8) + rng.normal(0, 0.05, 200)
    r = m.kfold_accuracy(d, y, folds=10)
    assert r["mean"] == 1.0 and r["std"] == 0.0 and len(r["per_fold"]) == 10


def test_summary_keys():
    s = m.summary(D, Y, 0.35)
    for key in ("accuracy", "roc_auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "confusion"):
        assert key in s


def test_with_negatives_only_the_empirical_threshold_sits_just_under_the_nearest():
    """A gallery of one photo a person gives different-person pairs only: accepting
    none of them must not halve the threshold (it once sat at half the smallest)."""
    negatives = np.array([0.62, 0.7, 0.81, 0.9, 1.0])
    t, rule = m.calibrated_threshold(negatives, np.zeros(5, int), 0.01, min_tail=0)
    assert rule == "far<=0.01" and 0.6199 < t < 0.62
    assert m.far_threshold(np.r_[0.3, negatives], np.r_[1, np.zeros(5, int)], 0.0) == \
        pytest.approx(0.46)  # between the positive and the nearest negative, as before
