"""Choosing between a trained model and the network it started from, on validation
pairs that share no photo with training: the figures both are judged by, and the
rule that keeps the trained one only when it is better.

Everything here takes embeddings (one row per photo index) and pair lists; the
train use case computes both models' embeddings from the same cached features.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from . import metrics
from .errors import MetricError
from .pairs import Pairs


@dataclass(frozen=True)
class ModelScores:
    """A model on the validation pairs (each ``None`` where the pairs cannot say)."""

    eer: float | None
    """EER of the clean validation pairs."""
    eer_degraded: float | None
    """EER of the same pairs with one photo degraded (every degradation, pooled)."""
    eer_unseen: float | None
    """EER of the pairs of people training never saw."""
    tar: float | None
    """True-accept rate of the clean pairs at the target false-accept rate."""
    target_far: float
    threshold: float | None = None
    """The threshold calibrated for ``target_far`` on the clean pairs
    (:func:`verifier.metrics.calibrated_threshold`); ``None`` without negatives."""
    rule: str = ""
    recall: float | None = None
    """Share of the clean same-person pairs (and of the ``positives`` :func:`score`
    is given) accepted at :attr:`threshold`: what
    users get at the operating point, where a model that spreads its impostors
    pays with a stricter threshold."""

    def as_dict(self) -> dict:
        return asdict(self)

    def errors(self) -> list[float]:
        """The error rates that are defined."""
        return [e for e in (self.eer, self.eer_degraded, self.eer_unseen) if e is not None]


def _safe(fn, *args) -> float | None:
    try:
        return float(fn(*args))
    except MetricError:
        return None


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(((a - b) ** 2).sum(axis=-1), 0.0))


def gallery_pairs(probes: np.ndarray, gallery: np.ndarray, photos: np.ndarray,
                  others: np.ndarray, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances of each of ``photos`` (embedded as ``probes``) to each of ``others``
    (embedded as ``gallery``; both indexed by photo), and whether the two show the
    same person (``people[i]``): what a query of a new photo meets in a gallery of
    the training photos."""
    photos, others = np.asarray(photos, np.int64), np.asarray(others, np.int64)
    if not len(photos) or not len(others):
        return np.zeros(0), np.zeros(0, bool)
    d = _distances(probes[photos][:, None], gallery[others][None])
    same = people[photos][:, None] == people[others][None]
    return d.ravel(), same.ravel()


def score(clean: np.ndarray, degraded: Sequence[np.ndarray], pairs: Pairs, unseen: np.ndarray,
          target_far: float, min_tail: int = 10, negatives: np.ndarray | None = None,
          positives: np.ndarray | None = None) -> ModelScores:
    """Scores of one model: ``clean`` and each of ``degraded`` are embeddings indexed
    by photo; ``unseen[i]`` says photo ``i``'s person has no training photo. The
    threshold is calibrated on the pairs and ``negatives``, and the recall at it
    counted on the pairs and ``positives`` (more different- and same-person
    distances, :func:`gallery_pairs`); the error rates are the pairs' own."""
    y = pairs.label.astype(bool)
    d = _distances(clean[pairs.first], clean[pairs.second])
    eer = _safe(metrics.eer, d, y)
    tar = _safe(metrics.tar_at_far, d, y, target_far)
    eer_degraded = None
    if degraded:
        # each pair both ways: the first photo degraded against the second clean, and back
        dd = np.concatenate([np.r_[_distances(v[pairs.first], clean[pairs.second]),
                                   _distances(v[pairs.second], clean[pairs.first])] for v in degraded])
        eer_degraded = _safe(metrics.eer, dd, np.tile(y, 2 * len(degraded)))
    both = unseen[pairs.first] & unseen[pairs.second]
    eer_unseen = _safe(metrics.eer, d[both], y[both]) if both.any() else None
    threshold, rule, recall = None, "", None
    try:
        extra = np.zeros(0) if negatives is None else np.asarray(negatives, float)
        threshold, rule = metrics.calibrated_threshold(np.r_[d, extra], np.r_[y, np.zeros(len(extra), bool)],
                                                       target_far, min_tail)
        same = np.r_[d[y], np.zeros(0) if positives is None else np.asarray(positives, float)]
        recall = float((same <= threshold).mean()) if len(same) else None
    except MetricError:
        pass
    return ModelScores(eer, eer_degraded, eer_unseen, tar, target_far, threshold, rule, recall)


def is_better(trained: ModelScores, start: ModelScores) -> bool:
    """Whether the trained model is to be kept: no error rate worse than the starting
    network's, their sum lower (ties keep the starting network), and no fewer
    same-person pairs accepted at its own calibrated threshold."""
    if trained.recall is not None and start.recall is not None and trained.recall < start.recall - 1e-12:
        return False
    pairs = [(t, s) for t, s in zip((trained.eer, trained.eer_degraded, trained.eer_unseen),
                                     (start.eer, start.eer_degraded, start.eer_unseen))
             if t is not None and s is not None]
    if not pairs:
        return False
    if any(t > s + 1e-12 for t, s in pairs):
        return False
    return sum(t for t, _ in pairs) < sum(s for _, s in pairs) - 1e-12
