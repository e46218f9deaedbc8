"""Faces joining groups as they arrive (:mod:`verifier.assignment`): hand-built cases
with the answer worked out, and seeded random streams where groups made batch by
batch (or continued from stored labels, as a later cluster run does) equal the
replay of every face at once."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.assignment import Groups, regroup
from verifier.clustering import ClusteringError, bcubed
from verifier.synthetic import identity_mixture


def points(*xy: tuple[float, float]) -> np.ndarray:
    return np.array(xy, np.float32)


def test_a_face_joins_the_group_its_nearest_faces_vote_for():
    g = Groups(1.0, k=3, centre=None)
    assert g.add(points((0, 0), (0.5, 0), (5, 0))).tolist() == [0, 0, 1]
    # (4.4, 0) is within 1 of (5, 0) only; (0.2, 0.1) of both faces of group 0
    assert g.add(points((4.4, 0), (0.2, 0.1))).tolist() == [1, 0]
    # nothing within the threshold: a new group, numbered after every one used
    assert g.add(points((20, 20))).tolist() == [2]
    assert g.labels.tolist() == [0, 0, 1, 1, 0, 2] and len(g) == 6


def test_closer_faces_outvote_more_numerous_far_ones():
    g = Groups(1.0, k=10, centre=None, vectors=points((0.9, 0), (0.9, 0.05), (0.9, -0.05), (-0.1, 0)),
               labels=np.array([0, 0, 0, 1]))
    # votes: group 0 about 3 * 0.1, group 1 0.9
    assert g.add(points((0, 0))).tolist() == [1]


def test_a_face_off_the_centre_of_a_group_starts_its_own():
    """Three faces of one person 0.3 around (0, 0); a look-alike's face 0.70 from one
    of them (within the threshold 1) but 1.0 from their centre (the radius for three
    faces: sqrt(2/3) = 0.82) starts a new group; without the centre test it is taken in."""
    person = points((0, 0.3), (-0.26, -0.15), (0.26, -0.15))
    other = points((0.8, -0.6))
    strict = Groups(1.0, k=5, centre=1.0, merge=False, vectors=person, labels=np.zeros(3, np.int64))
    assert strict.add(other).tolist() == [1]
    loose = Groups(1.0, k=5, centre=None, vectors=person, labels=np.zeros(3, np.int64))
    assert loose.add(other).tolist() == [0]


def test_two_groups_of_one_person_merge_when_a_face_bridges_them_but_differently_named_ones_never():
    """Faces at 0 and 1 started two groups (threshold 0.75); a face at 0.5 hears both
    equally, joins the smaller number, and the two centres (0.25 and 1, 0.75 apart)
    are within 0.75 * sqrt((1/2 + 1) / 2) * 2 = 1.30 of each other: one group."""
    start = points((0, 0), (1, 0))
    merged = Groups(0.75, k=5, centre=2.0, vectors=start, labels=np.array([0, 1]))
    assert merged.add(points((0.5, 0))).tolist() == [0] and merged.labels.tolist() == [0, 0, 0]
    apart = Groups(0.75, k=5, centre=2.0, vectors=start, labels=np.array([0, 1]), names={0: "ana", 1: "bo"})
    assert apart.add(points((0.5, 0))).tolist() == [0] and apart.labels.tolist() == [0, 1, 0]
    # a named group keeps its number when an unnamed one merges into it; two groups
    # given one name are one person
    named = Groups(0.75, k=5, centre=2.0, vectors=start, labels=np.array([0, 1]), names={1: "bo"})
    assert named.add(points((0.5, 0))).tolist() == [1] and named.labels.tolist() == [1, 1, 1]
    twice = Groups(0.75, k=5, centre=2.0, vectors=start, labels=np.array([0, 1]), names={0: "bo", 1: "bo"})
    assert twice.add(points((0.5, 0))).tolist() == [0] and twice.labels.tolist() == [0, 0, 0]
    unmerged = Groups(0.75, k=5, centre=2.0, merge=False, vectors=start, labels=np.array([0, 1]))
    assert unmerged.add(points((0.5, 0))).tolist() == [0] and unmerged.labels.tolist() == [0, 1, 0]


def test_bad_input_is_refused():
    with pytest.raises(ClusteringError, match="threshold"):
        Groups(0)
    with pytest.raises(ClusteringError, match="one non-negative label"):
        Groups(1.0, vectors=points((0, 0)), labels=np.array([-1]))
    g = Groups(1.0)
    g.add(points((0, 0)))
    with pytest.raises(ClusteringError, match="width 3"):
        g.add(np.zeros((1, 3), np.float32))
    with pytest.raises(ClusteringError, match="NaN"):
        g.add(points((np.nan, 0)))
    assert g.add(np.zeros((0, 2), np.float32)).tolist() == []


def mixture(seed: int, lookalikes: float | None):
    vectors, truth = identity_mixture(40, (1, 12), dim=32, spread=0.05, lookalikes=lookalikes, seed=seed)
    order = np.random.default_rng(seed).permutation(len(vectors))
    return vectors[order], truth[order]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 400), max_size=8),
       lookalikes=st.sampled_from([None, 0.5]), continue_at=st.integers(0, 400))
def test_batches_and_continued_runs_group_as_one_replay(seed, cuts, lookalikes, continue_at):
    """Whatever the batches, and when a later run rebuilds the grouping from the
    labels an earlier one stored, the groups equal one replay of every face."""
    vectors, _ = mixture(seed, lookalikes)
    threshold = 0.9
    whole = regroup(vectors, threshold, k=10)
    g = Groups(threshold, k=10)
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(vectors)]):
        g.add(vectors[a:b])
    assert g.labels.tolist() == whole.tolist()
    at = min(continue_at, len(vectors))
    stored = regroup(vectors[:at], threshold, k=10)  # what the earlier run stored
    later = Groups(threshold, k=10, vectors=vectors[:at], labels=stored)
    later.add(vectors[at:])
    assert bcubed(whole, later.labels) == (1.0, 1.0, 1.0)


def test_people_are_found_and_look_alikes_kept_apart():
    """Seeded people (as ``benchmarks/cluster_quality.py`` draws them, smaller): the
    groups match the people, and people planted 0.5 apart stay mostly apart."""
    vectors, truth = identity_mixture(100, (1, 12), spread=0.025, seed=3)
    order = np.random.default_rng(3).permutation(len(vectors))
    assert bcubed(truth[order], regroup(vectors[order], 0.6))[2] >= 0.99
    vectors, truth = identity_mixture(100, (1, 12), spread=0.025, lookalikes=0.5, seed=3)
    precision, _, f = bcubed(truth[order], regroup(vectors[order], 0.6))
    assert precision >= 0.85 and f >= 0.9
