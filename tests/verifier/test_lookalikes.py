"""Look-alike pairs on hand-built people with exact answers, and on seeded mixtures
with look-alike pairs planted (the benchmark's centres 0.5 and 0.4 apart)."""
from __future__ import annotations

import numpy as np
import pytest

from verifier.lookalikes import look_alikes, people
from verifier.synthetic import identity_mixture


def test_people_whose_photos_overlap_are_listed_with_their_closest_photos():
    vectors = np.array([[0.0, 0], [0.2, 0],     # 0: centre 0.1, photos 0.1 from it
                        [0.25, 0], [0.5, 0],    # 1: centre 0.375, 0.275 from person 0
                        [10.0, 0], [10.2, 0],   # 2: far from everyone
                        [20.0, 0], [20.05, 0]], np.float32)  # 3 and 4: one photo each
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 4])
    names, centres, radii = people(vectors, labels, threshold=0.1)
    # radius: the photos' 90th-percentile distance to the centre, widened for two photos
    # by sqrt(2); a single photo gets half the threshold
    assert radii.tolist() == pytest.approx([0.1 * 2 ** 0.5, 0.125 * 2 ** 0.5, 0.1 * 2 ** 0.5, 0.05, 0.05],
                                           rel=1e-5)
    found = look_alikes(vectors, labels, threshold=0.1)
    assert [(p.first, p.second) for p in found] == [(3, 4), (0, 1)]  # most overlapping first
    three_four, zero_one = found
    assert three_four.distance == pytest.approx(0.05, rel=1e-4) and three_four.overlap == pytest.approx(0.1)
    assert zero_one.distance == pytest.approx(0.275, rel=1e-5)
    assert zero_one.overlap == pytest.approx(0.225 * 2 ** 0.5, rel=1e-5)
    assert [(b.first, b.second) for b in zero_one.bridges] == [(1, 2), (0, 2), (1, 3)]
    assert [b.distance for b in zero_one.bridges] == pytest.approx([0.05, 0.25, 0.3], rel=1e-5)


def test_people_apart_and_a_single_person_give_nothing():
    vectors = np.array([[0.0, 0], [0.2, 0], [0.5, 0], [0.7, 0]], np.float32)
    assert look_alikes(vectors, np.array([0, 0, 1, 1]), threshold=0.1) == []  # 0.5 apart > 0.28
    assert look_alikes(vectors, np.zeros(4, np.int64), threshold=0.1) == []


@pytest.mark.parametrize("apart, spread", [(0.5, 0.025), (0.5, 0.03), (0.4, 0.025)])
def test_planted_look_alikes_are_found_and_nobody_else(apart, spread):
    vectors, labels = identity_mixture(300, (1, 20), lookalikes=apart, spread=spread, seed=3)
    found = {(p.first, p.second) for p in look_alikes(vectors, labels, threshold=0.6)}
    planted = {(2 * i, 2 * i + 1) for i in range(150)}
    assert len(found & planted) >= 0.9 * len(planted)
    assert found <= planted  # no two different people listed


def test_no_planted_look_alikes_no_pairs():
    vectors, labels = identity_mixture(300, (1, 20), seed=4)
    assert look_alikes(vectors, labels, threshold=0.6) == []
