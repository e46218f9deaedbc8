"""External pair lists (LFW's pairs.txt, CSV) and the fold protocol, on hand-built cases."""
import numpy as np
import pytest

from verifier.metrics import folds_accuracy
from verifier.pairlists import PairListError, read_pair_list

TWO_FOLDS = """2\t2
Ana\t1\t2
Bo\t1\t3
Ana\t1\tBo\t2
Cy\t4\tAna\t2
Bo\t2\t3
Cy\t1\t12
Bo\t1\tCy\t1
Ana\t2\tCy\t12
"""


def test_lfw_pairs_two_folds(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(TWO_FOLDS)
    pl = read_pair_list(path)
    assert pl.format == "lfw" and pl.folds == 2 and len(pl.pairs) == 8
    first = pl.pairs[0]
    assert (first.a, first.b, first.label, first.fold, first.line) == \
        ("Ana/Ana_0001.jpg", "Ana/Ana_0002.jpg", 1, 0, 2)
    assert [p.label for p in pl.pairs] == [1, 1, 0, 0, 1, 1, 0, 0]
    assert [p.fold for p in pl.pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (pl.pairs[3].a, pl.pairs[3].b) == ("Cy/Cy_0004.jpg", "Ana/Ana_0002.jpg")
    assert pl.pairs[5].b == "Cy/Cy_0012.jpg"


def test_lfw_one_fold_header_and_bad_lines(tmp_path):
    path = tmp_path / "pairsDevTest.txt"
    path.write_text("1\nAna 1 2\nAna 1 Bo 1\n")
    pl = read_pair_list(path)
    assert pl.folds == 0 and [p.label for p in pl.pairs] == [1, 0]
    path.write_text("1\nAna 1 Bo 2\nAna 1 Bo 1\n")  # a different-pair line where a same one belongs
    with pytest.raises(PairListError, match="line 2: expected 'name n1 n2'"):
        read_pair_list(path)
    path.write_text("1\nAna 1 x\nAna 1 Bo 1\n")
    with pytest.raises(PairListError, match="line 2"):
        read_pair_list(path)
    path.write_text("2 1\nAna 1 2\nAna 1 Bo 1\n")
    with pytest.raises(PairListError, match="4 lines.*has 2"):
        read_pair_list(path)
    path.write_text("hello world\n")
    with pytest.raises(PairListError, match="line 1"):
        read_pair_list(path)


def test_csv_with_spaces_unicode_and_escapes(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('a,b,label\n"Zoë Ñ/photo one.jpg",Bo/b.png,0\nAna/1.jpg,Ana/2.jpg,1\n', "utf-8")
    pl = read_pair_list(path)
    assert pl.format == "csv" and pl.folds == 0
    assert (pl.pairs[0].a, pl.pairs[0].label, pl.pairs[0].line) == ("Zoë Ñ/photo one.jpg", 0, 2)
    path.write_text("a,b,label\n../etc/passwd,Ana/2.jpg,1\n")
    with pytest.raises(PairListError, match="line 2.*not a path inside"):
        read_pair_list(path)
    path.write_text("a,b,label\nAna/1.jpg,Ana/2.jpg,2\n")
    with pytest.raises(PairListError, match="label must be 1"):
        read_pair_list(path)


def test_folds_accuracy_hand_computed():
    # fold 0: same at 0.1, 0.2; different at 0.9, 0.3  -> best threshold on fold 0 is 0.2
    # fold 1: same at 0.25, 0.8; different at 0.7, 0.95 -> best threshold on fold 1 is 0.25..0.7
    d = np.array([0.1, 0.2, 0.9, 0.3, 0.25, 0.8, 0.7, 0.95])
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    fold = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = folds_accuracy(d, y, fold)
    # fold 0 scored with fold 1's threshold; fold 1 with fold 0's (0.2 < t < 0.3)
    t1, t0 = r["thresholds"]
    assert 0.25 <= t1 < 0.7 and 0.2 <= t0 < 0.3
    expected0 = np.mean((d[:4] <= t1) == y[:4])
    expected1 = np.mean((d[4:] <= t0) == y[4:])
    assert r["per_fold"] == [expected0, expected1]
    assert r["per_fold"][1] == 0.75  # 0.25 accepted, 0.8 rejected, both different rejected
    assert r["mean"] == pytest.approx((expected0 + expected1) / 2)


def test_ten_folds_with_known_thresholds():
    """Folds 1-9: same at 0.2, different at 0.6. Fold 0: same at 0.5, different at 0.4.
    Scoring fold 0, the other nine give 0.4 (midpoint of 0.2 and 0.6): both of its
    pairs are wrong. Scoring any other fold, the best thresholds are 0.3 and 0.55
    (17 of 18 right), the smaller wins: both pairs right."""
    d = np.array([0.5, 0.4] + [0.2, 0.6] * 9)
    y = np.array([1, 0] * 10)
    fold = np.repeat(np.arange(10), 2)
    r = folds_accuracy(d, y, fold)
    assert r["folds"] == 10
    assert r["thresholds"] == pytest.approx([0.4] + [0.3] * 9)
    assert r["per_fold"] == [0.0] + [1.0] * 9
    assert r["mean"] == pytest.approx(0.9) and r["std"] == pytest.approx(0.3)
