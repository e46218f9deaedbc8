"""Look-alike pairs on hand-built people with exact answers, and on seeded mixtures
with look-alike pairs planted (the benchmark's centres 0.5 and 0.4 apart)."""
from __future__ import annotations

import numpy as np
import pytest

from verifier.lookalikes import MARGIN, look_alikes
from verifier.synthetic import identity_mixture


def test_people_with_photos_within_the_threshold_are_listed_with_their_closest_photos():
    vectors = np.array([[0.0, 0], [0.2, 0],      # 0
                        [0.3, 0], [0.6, 0],      # 1: its photo 0.1 from one of 0's
                        [1.0, 0],                # 2: 0.4 from 1, a single photo
                        [10.0, 0], [10.2, 0]], np.float32)  # 3: far from everyone
    labels = np.array([0, 0, 1, 1, 2, 3, 3])
    found = look_alikes(vectors, labels, threshold=0.2)
    assert [(p.first, p.second) for p in found] == [(0, 1)]
    (pair,) = found
    assert pair.distance == pytest.approx(0.1, rel=1e-5) and pair.limit == pytest.approx(0.2 * (1 + MARGIN))
    assert [(b.first, b.second) for b in pair.bridges] == [(1, 2), (0, 2), (1, 3)]
    assert [b.distance for b in pair.bridges] == pytest.approx([0.1, 0.3, 0.4], rel=1e-5)
    # a wider threshold brings in the single photo: 0.4 from person 1, 0.8 from person 0
    wider = look_alikes(vectors, labels, threshold=0.5)
    assert [(p.first, p.second) for p in wider] == [(0, 1), (1, 2)]


def test_the_margin_lists_pairs_just_over_the_threshold():
    vectors = np.array([[0.0, 0], [0.1, 0], [0.52, 0], [0.62, 0]], np.float32)
    labels = np.array([0, 0, 1, 1])
    assert look_alikes(vectors, labels, threshold=0.39) == []  # 0.42 > 0.39 * 1.05
    assert len(look_alikes(vectors, labels, threshold=0.41)) == 1  # 0.42 < 0.4305
    assert look_alikes(vectors, labels, threshold=0.41, margin=0.0) == []
    assert look_alikes(vectors, np.zeros(4, np.int64), threshold=1.0) == []  # one person


@pytest.mark.parametrize("apart", [0.5, 0.4])
def test_planted_look_alikes_are_found_and_nobody_else(apart):
    vectors, labels = identity_mixture(300, (1, 20), lookalikes=apart, seed=3)
    found = {(p.first, p.second) for p in look_alikes(vectors, labels, threshold=0.6)}
    planted = {(2 * i, 2 * i + 1) for i in range(150)}
    assert len(found & planted) >= 0.9 * len(planted)
    assert found <= planted  # no two different people listed


def test_no_planted_look_alikes_no_pairs():
    vectors, labels = identity_mixture(300, (1, 20), seed=4)
    assert look_alikes(vectors, labels, threshold=0.6) == []
