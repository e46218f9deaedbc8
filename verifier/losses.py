"""Euclidean distance and contrastive loss, in Keras ops and in plain NumPy.

The NumPy versions are the reference the tests check the Keras ones against, and
what evaluation uses on stored embeddings.
"""
from __future__ import annotations

import numpy as np
from .defaults import DEFAULT_MARGIN

EPSILON = 1e-7
"""Floor under the squared distance, so that ``sqrt`` has a finite gradient at 0."""


def euclidean_distance(a, b, eps: float = EPSILON):
    """``sqrt(max(sum((a - b)^2, axis=-1), eps))`` for Keras tensors (shape ``(N,)``)."""
    from keras import ops

    squared = ops.sum(ops.square(a - b), axis=-1)
    return ops.sqrt(ops.maximum(squared, eps))


def contrastive_loss(y, d, margin: float = DEFAULT_MARGIN):
    """Per-pair contrastive loss ``y*d^2 + (1-y)*max(margin-d, 0)^2`` (Keras ops)."""
    from keras import ops

    y = ops.cast(y, d.dtype)
    return y * ops.square(d) + (1.0 - y) * ops.square(ops.maximum(margin - d, 0.0))


def euclidean_distance_np(a: np.ndarray, b: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """NumPy twin of :func:`euclidean_distance` (float64 accumulation)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.sqrt(np.maximum((diff * diff).sum(axis=-1), eps))


def contrastive_loss_np(y: np.ndarray, d: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """NumPy twin of :func:`contrastive_loss`."""
    y = np.asarray(y, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    return y * d ** 2 + (1 - y) * np.maximum(margin - d, 0.0) ** 2
