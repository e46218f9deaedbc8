"""The tutorial's way of training, kept as a reference (not part of the package):
a two-branch Keras model that loads and runs both photos of every pair, every step."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from verifier.images import load_batch, scan_dataset
from verifier.losses import contrastive_loss
from verifier.pairs import make_pairs


def _siamese(backbone: str, weights: str, image_size: int, fine_tune: float, embedding_dim: int,
             margin: float = 1.0):
    import keras

    from verifier.network import build_branch, build_siamese

    branch = build_branch(backbone, weights=weights, image_size=image_size,
                          embedding_dim=embedding_dim, fine_tune=fine_tune)
    model = build_siamese(branch.model)
    model.compile(optimizer=keras.optimizers.RMSprop(),
                  loss=lambda y, d: contrastive_loss(y, d, margin))
    return branch, model


class PerPairPipeline:
    """Train steps of 8 pairs, decoding both photos of each pair from disk."""

    def __init__(self, data: Path, *, weights: str = "none", image_size: int = 244,
                 backbone: str = "vgg19", fine_tune: float = 0.10, seed: int = 0) -> None:
        self.dataset = scan_dataset(data)
        self.pairs = make_pairs([p.identity for p in self.dataset.photos], "seed", seed).train
        self.size = image_size
        _, self.model = _siamese(backbone, weights, image_size, fine_tune, 64)

    @property
    def train_pairs(self) -> int:
        return len(self.pairs)

    def _batch(self, start: int):
        idx = range(start, start + 8)
        paths = [p.path for p in self.dataset.photos]
        a = load_batch([paths[self.pairs.first[i]] for i in idx], self.size)
        b = load_batch([paths[self.pairs.second[i]] for i in idx], self.size)
        return [a.astype("float32"), b.astype("float32")], self.pairs.label[list(idx)].astype("float32")

    def time_steps(self, steps: int) -> float:
        """Seconds per step, after one warm-up step."""
        x, y = self._batch(0)
        self.model.train_on_batch(x, y)
        t = time.perf_counter()
        for s in range(steps):
            x, y = self._batch(8 * (s + 1))
            self.model.train_on_batch(x, y)
        return (time.perf_counter() - t) / steps


def fit_per_pair(data: Path, *, backbone: str, weights: str, fine_tune: float, image_size: int,
                 epochs: int, seed: int, embedding_dim: int, batch_pairs: int = 8) -> dict:
    """A plain per-pair ``Model.fit`` of the same network; returns the validation ROC AUC."""
    import keras

    from verifier.metrics import roc_auc

    ds = scan_dataset(data)
    ps = make_pairs([p.identity for p in ds.photos], "seed", seed)
    images = load_batch([p.path for p in ds.photos], image_size).astype("float32")
    keras.utils.set_random_seed(seed)
    _, model = _siamese(backbone, weights, image_size, fine_tune, embedding_dim)
    tr, va = ps.train, ps.validation
    model.fit([images[tr.first], images[tr.second]], tr.label.astype("float32"),
              batch_size=batch_pairs, epochs=epochs, verbose=0, shuffle=True)
    d = np.asarray(model.predict([images[va.first], images[va.second]], verbose=0))
    return {"val_auc": roc_auc(d, va.label)}
