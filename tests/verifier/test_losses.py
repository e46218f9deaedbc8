import numpy as np
import pytest

from verifier.losses import (EPSILON, contrastive_loss, contrastive_loss_np, euclidean_distance,
                             euclidean_distance_np)


def test_distance_exact_values():
    a = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    d = np.asarray(euclidean_distance(a, b))
    assert d == pytest.approx([5.0, np.sqrt(EPSILON), 5.0], rel=1e-6)
    assert euclidean_distance_np(a, b) == pytest.approx([5.0, np.sqrt(EPSILON), 5.0])


def test_distance_gradient_finite_at_zero():
    import tensorflow as tf

    a = tf.Variable([[1.0, 2.0]])
    with tf.GradientTape() as tape:
        d = euclidean_distance(a, tf.constant([[1.0, 2.0]]))
    g = tape.gradient(d, a).numpy()
    assert np.all(np.isfinite(g))


def test_contrastive_exact_values():
    y = np.array([1, 1, 0, 0, 0], dtype=np.float32)
    d = np.array([0.5, 2.0, 0.25, 1.0, 3.0], dtype=np.float32)
    expected = [0.25, 4.0, 0.5625, 0.0, 0.0]
    assert np.asarray(contrastive_loss(y, d, margin=1.0)) == pytest.approx(expected)
    assert contrastive_loss_np(y, d, margin=1.0) == pytest.approx(expected)
    # a larger margin pushes different pairs further
    assert contrastive_loss_np([0], [1.0], margin=2.0) == pytest.approx([1.0])
