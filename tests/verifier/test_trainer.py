import numpy as np
import pytest

from verifier.pairs import Pairs, make_pairs
from verifier.trainer import FastTrainer, compute_features, plan_epoch


def test_plan_epoch_uses_every_pair_once():
    ids = [f"p{i // 5}" for i in range(60)]
    ps = make_pairs(ids, "seed", seed=0)
    rows = np.arange(60)
    steps = plan_epoch(ps.train, rows, batch_size=16, rng=np.random.default_rng(0))
    seen = []
    for s in steps:
        assert len(s.photos) <= 16
        seen += list(zip(s.photos[s.first].tolist(), s.photos[s.second].tolist()))
    assert sorted(seen) == sorted(zip(ps.train.first.tolist(), ps.train.second.tolist()))
    labels = np.concatenate([s.label for s in steps])
    assert labels.sum() == ps.train.positives


def test_plan_epoch_small_set_is_one_step():
    ps = make_pairs(["a", "a", "b", "b", "c"], "seed", seed=0)
    steps = plan_epoch(ps.train, np.arange(5), batch_size=32, rng=np.random.default_rng(0))
    assert len(steps) == 1 and len(steps[0].label) == len(ps.train)


def test_compute_features_memory_maps_large_outputs(tmp_path):
    calls = []

    def predict(x):
        calls.append(len(x))
        return x * 2.0

    def load(idx):
        return np.array([[i, i] for i in idx], np.float32)

    out = compute_features(predict, load, 10, batch_size=4, cache_dir=tmp_path, memory_limit=8)
    assert calls == [4, 4, 2]
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(out[:, 0], np.arange(10) * 2.0)
    out2 = compute_features(predict, load, 10, batch_size=4)
    assert not isinstance(out2, np.memmap)


def test_cached_trainer_matches_plain_siamese_gradients():
    """Loss and gradients of one step equal those of the two-branch model."""
    import keras
    import tensorflow as tf

    from verifier.losses import contrastive_loss
    from verifier.network import build_branch, build_siamese

    keras.utils.set_random_seed(0)
    branch = build_branch("tiny", weights="none", image_size=32, embedding_dim=8, fine_tune=0.5)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    ps = make_pairs([f"p{i // 3}" for i in range(12)], "seed", seed=0)
    rows = np.arange(12)
    step = plan_epoch(ps.train, rows, batch_size=64, rng=rng)[0]
    features = np.asarray(branch.frozen(images))
    trainer = FastTrainer(branch.head, margin=1.0)
    loss, grads = trainer.loss_and_gradients(features, step)

    siamese = build_siamese(branch.model)
    xa = images[step.photos[step.first]]
    xb = images[step.photos[step.second]]
    with tf.GradientTape() as tape:
        d = siamese([xa, xb])
        ref_loss = tf.reduce_mean(contrastive_loss(step.label, d, 1.0))
    ref_grads = tape.gradient(ref_loss, branch.head.trainable_variables)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    assert len(grads) == len(ref_grads) > 0
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-6)


def test_tiny_backbone_learns_synthetic_identities():
    """Validation ROC AUC rises from about chance to above 0.9."""
    import keras

    from verifier.synthetic import pattern_image
    from verifier.network import build_branch

    rng = np.random.default_rng(0)
    ids = [i for i in range(8) for _ in range(8)]
    images = np.stack([pattern_image(i, rng, 32, noise=25.0) for i in ids]).astype("float32")
    ps = make_pairs([str(i) for i in ids], "seed", seed=0)
    keras.utils.set_random_seed(0)
    branch = build_branch("tiny", weights="none", image_size=32, embedding_dim=16, fine_tune=1.0)
    features = np.asarray(branch.frozen(images))
    trainer = FastTrainer(branch.head)
    rows = np.arange(len(ids))
    _, before = trainer.evaluate(features, rows, ps.validation)
    history = trainer.fit(features, rows, ps.train, ps.validation, epochs=15, batch_size=32, seed=0)
    assert 0.3 < before < 0.75
    assert history.val_auc[-1] > 0.9
    assert history.loss[-1] < history.loss[0]


def test_patience_stops_early_and_keeps_best():
    import keras

    from verifier.network import build_branch

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    branch = build_branch("tiny", weights="none", image_size=32, embedding_dim=4, fine_tune=0.0)
    images = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    ps = make_pairs([str(i // 4) for i in range(16)], "seed", seed=0)
    # training pushes every pair apart; validation calls the same pairs "same",
    # so its loss rises from the first epoch on
    apart = Pairs(ps.train.first, ps.train.second, np.zeros_like(ps.train.label))
    inverted = Pairs(ps.train.first, ps.train.second, np.ones_like(ps.train.label))
    trainer = FastTrainer(branch.head)
    features = np.asarray(branch.frozen(images))
    h = trainer.fit(features, np.arange(16), apart, inverted, epochs=50, patience=2)
    assert h.stopped_early and len(h.loss) == 3 and h.best_epoch == 0
    best_loss, _ = trainer.evaluate(features, np.arange(16), inverted)
    assert best_loss == pytest.approx(h.val_loss[h.best_epoch], rel=1e-4)


def test_variants_are_mixed_per_photo():
    """With an augmentation variant, each step takes originals or variants per photo."""
    import keras

    from verifier.network import build_branch

    keras.utils.set_random_seed(0)
    branch = build_branch("tiny", weights="none", image_size=32, embedding_dim=4, fine_tune=0.0)
    ps = make_pairs([str(i // 4) for i in range(16)], "seed", seed=0)
    shape = (16,) + tuple(branch.head.input.shape[1:])
    originals, mirrored = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    trainer = FastTrainer(branch.head)
    seen = []
    real_step = trainer._train_step
    trainer._train_step = lambda f, *a: (seen.append(np.asarray(f)), real_step(f, *a))[1]
    trainer.fit(originals, np.arange(16), ps.train, epochs=3, batch_size=8, variants=[mirrored])
    per_photo = np.concatenate([b.reshape(len(b), -1) for b in seen])
    assert set(np.unique(per_photo.min(axis=1))) == {0.0, 1.0}
    assert np.array_equal(per_photo.min(axis=1), per_photo.max(axis=1))  # never mixed within a photo
