"""Reports split by face quality: a hand-built run with exact answers per band."""
import numpy as np
import pytest

from jobs.report import ScoredPairs, quality_bands
from verifier.quality import band_of


def scored(distances, labels, qa, qb, threshold=0.5):
    n = len(distances)
    return ScoredPairs({"params": {"threshold": threshold}}, {}, ["a"] * n, ["b"] * n, ["x"] * n,
                       ["y"] * n, np.array(labels, np.int8), np.array(distances, float), None, qa, qb)


def test_band_edges():
    assert [band_of(q) for q in (0.0, 0.49, 0.5, 0.79, 0.8, 1.0, None)] == [
        "poor (< 0.5)", "poor (< 0.5)", "fair (0.5-0.8)", "fair (0.5-0.8)", "good (>= 0.8)",
        "good (>= 0.8)", "not rated"]


def test_bands_take_the_lower_quality_of_a_pair_and_count_errors_at_the_threshold():
    # good pairs: two same (0.2, 0.3: accepted), two different (0.9 rejected, 0.4 accepted)
    # poor pairs (one face poor): same 0.7 (rejected), same 0.2, different 0.8
    s = scored([0.2, 0.3, 0.9, 0.4, 0.7, 0.2, 0.8, 0.1],
               [1, 1, 0, 0, 1, 1, 0, 1],
               [0.9, 0.95, 0.9, 0.85, 0.2, 0.9, 0.3, None],
               [0.9, 0.9, 0.99, 0.9, 0.9, 0.1, 0.9, 0.9])
    rows = {r["band"]: r for r in quality_bands(s)}
    assert list(rows) == ["poor (< 0.5)", "good (>= 0.8)", "not rated"]
    good, poor = rows["good (>= 0.8)"], rows["poor (< 0.5)"]
    assert (good["pairs"], good["same"], good["frr"], good["far"]) == (4, 2, 0.0, 0.5)
    assert (poor["pairs"], poor["same"], poor["frr"], poor["far"]) == (3, 2, 0.5, 0.0)
    assert rows["not rated"] == {"band": "not rated", "pairs": 1, "same": 1, "eer": None,
                                 "frr": 0.0, "far": None}
    # both bands are separable by some threshold (EER 0), though not by the run's 0.5
    assert good["eer"] == pytest.approx(0.0) and poor["eer"] == pytest.approx(0.0)
