"""The fast trainer: frozen features computed once per photo, steps over photos.

The frozen prefix of the branch runs once per unique photo (:func:`compute_features`).
A training step takes a set of photos, runs the trainable ``head`` once on their
cached features and applies the contrastive loss to every training pair among them.
An epoch visits every training pair exactly once (:func:`plan_epoch`).
"""
from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS  # noqa: F401  (re-exported)
from .losses import DEFAULT_MARGIN, contrastive_loss_np, euclidean_distance_np
from .pairs import Pairs

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
"""Cached features larger than this go to a memory-mapped file on disk."""


@dataclass(frozen=True)
class Step:
    """One training step: which photos run through the head and which pairs score."""

    photos: np.ndarray  # rows of the feature cache
    first: np.ndarray   # positions in ``photos``
    second: np.ndarray
    label: np.ndarray


def compute_features(frozen_predict: Callable[[np.ndarray], np.ndarray],
                     load: Callable[[Sequence[int]], np.ndarray], count: int, *,
                     batch_size: int = 32, cache_dir: Path | None = None,
                     memory_limit: int = MEMORY_LIMIT_BYTES,
                     progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run the frozen part once on each of ``count`` photos, in batches.

    ``load(indices)`` returns the pixels of those photos; the result is kept in
    memory, or in a memory-mapped file under ``cache_dir`` when over ``memory_limit``.
    """
    out: np.ndarray | None = None
    for start in range(0, count, batch_size):
        idx = list(range(start, min(start + batch_size, count)))
        feats = np.asarray(frozen_predict(load(idx)), dtype=np.float32)
        if out is None:
            shape = (count,) + feats.shape[1:]
            nbytes = int(np.prod(shape)) * 4
            if nbytes > memory_limit:
                folder = Path(cache_dir or tempfile.gettempdir())
                folder.mkdir(parents=True, exist_ok=True)
                handle = tempfile.NamedTemporaryFile(dir=folder, suffix=".npy", delete=False)
                handle.close()
                log.info("features need %.1f GB: memory-mapping %s", nbytes / 1e9, handle.name)
                out = np.lib.format.open_memmap(handle.name, mode="w+", dtype=np.float32, shape=shape)
            else:
                out = np.empty(shape, dtype=np.float32)
        out[idx[0]: idx[-1] + 1] = feats
        if progress:
            progress(len(idx))
    assert out is not None, "no photos"
    return out


def plan_epoch(pairs: Pairs, rows: np.ndarray, batch_size: int,
               rng: np.random.Generator) -> list[Step]:
    """Split one epoch into steps that together use every pair exactly once.

    The photos are shuffled into groups of ``batch_size // 2``; a step takes two
    groups and every pair across them, plus the pairs inside one of them (each
    group's inner pairs go with exactly one step). ``rows[i]`` is the feature row
    of photo ``i``.
    """
    first, second = rows[pairs.first], rows[pairs.second]
    photos = np.unique(np.concatenate([first, second]))
    group_size = max(1, batch_size // 2)
    m = math.ceil(len(photos) / group_size)
    if m <= 2:
        return [_make_step(photos, first, second, pairs.label)]
    group_of = np.empty(int(photos.max()) + 1, dtype=np.int64)
    shuffled = rng.permutation(photos)
    group_of[shuffled] = np.arange(len(shuffled)) // group_size
    ga, gb = group_of[first], group_of[second]
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
    inner = lo == hi
    partner = np.where(lo < m - 1, lo + 1, lo - 1)
    hi = np.where(inner, np.maximum(lo, partner), hi)
    lo = np.where(inner, np.minimum(lo, partner), lo)
    key = lo * m + hi
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    steps = []
    for chunk in np.split(order, bounds):
        a, b = divmod(int(key[chunk[0]]), m)
        members = shuffled[(np.arange(len(shuffled)) // group_size == a)
                           | (np.arange(len(shuffled)) // group_size == b)]
        steps.append(_make_step(np.sort(members), first[chunk], second[chunk], pairs.label[chunk]))
    return [steps[i] for i in rng.permutation(len(steps))]


def _make_step(photos: np.ndarray, first: np.ndarray, second: np.ndarray,
               label: np.ndarray) -> Step:
    return Step(photos, np.searchsorted(photos, first), np.searchsorted(photos, second),
                label.astype(np.float32))


@dataclass
class History:
    """Per-epoch losses (and validation ROC AUC when it is defined)."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_auc: list[float | None] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return {"loss": self.loss, "val_loss": self.val_loss, "val_auc": self.val_auc,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early}


class FastTrainer:
    """Trains the ``head`` of a branch on cached frozen features."""

    def __init__(self, head, *, margin: float = DEFAULT_MARGIN, optimizer=None,
                 hard_negatives: int = 0) -> None:
        import keras
        import tensorflow as tf

        from .losses import contrastive_loss, euclidean_distance

        self.head = head
        self.margin = float(margin)
        self.optimizer = optimizer or keras.optimizers.RMSprop()
        self.hard_negatives = int(hard_negatives)
        margin_value, ratio = self.margin, self.hard_negatives

        def loss_fn(features, first, second, label):
            emb = head(features, training=False)
            d = euclidean_distance(tf.gather(emb, first), tf.gather(emb, second))
            per_pair = contrastive_loss(label, d, margin_value)
            if ratio:  # every positive, and the hardest negatives only (ratio per positive)
                positive = label > 0.5
                n_pos = tf.reduce_sum(tf.cast(positive, tf.int32))
                negatives = tf.boolean_mask(per_pair, ~positive)
                k = tf.minimum(tf.size(negatives), ratio * tf.maximum(n_pos, 1))
                hardest = tf.math.top_k(negatives, k).values
                total = tf.reduce_sum(tf.boolean_mask(per_pair, positive)) + tf.reduce_sum(hardest)
                data = total / tf.cast(tf.maximum(n_pos + k, 1), per_pair.dtype)
            else:
                data = tf.reduce_mean(per_pair)
            # the head's own penalties (an adapter's pull toward the identity)
            return data + tf.add_n([tf.cast(x, data.dtype) for x in head.losses]) if head.losses else data

        self._loss_fn = loss_fn

        @tf.function(reduce_retracing=True)
        def train_step(features, first, second, label):
            with tf.GradientTape() as tape:
                loss = loss_fn(features, first, second, label)
            variables = head.trainable_variables
            grads = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            return loss

        self._train_step = train_step

    def loss_and_gradients(self, features: np.ndarray, step: Step):
        """Loss and gradients of one step, without applying them (for checks)."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self._loss_fn(tf.constant(features[step.photos]), step.first, step.second,
                                 step.label)
        return loss, tape.gradient(loss, self.head.trainable_variables)

    def embed(self, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
        out = [np.asarray(self.head(features[i:i + batch_size], training=False))
               for i in range(0, len(features), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def evaluate(self, features: np.ndarray, rows: np.ndarray, pairs: Pairs) -> tuple[float, float | None]:
        """Mean contrastive loss and ROC AUC of ``pairs`` (AUC ``None`` for one class)."""
        from .metrics import roc_auc

        used = np.unique(np.concatenate([rows[pairs.first], rows[pairs.second]]))
        emb = self.embed(features[used])
        pos = np.searchsorted(used, rows[pairs.first]), np.searchsorted(used, rows[pairs.second])
        d = euclidean_distance_np(emb[pos[0]], emb[pos[1]])
        loss = float(contrastive_loss_np(pairs.label, d, self.margin).mean())
        auc = roc_auc(d, pairs.label) if 0 < pairs.positives < len(pairs) else None
        return loss, auc

    def fit(self, features: np.ndarray, rows: np.ndarray, train: Pairs,
            validation: Pairs | None = None, *, epochs: int = DEFAULT_EPOCHS,
            batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, patience: int | None = None,
            on_epoch: Callable[[int, History], None] | None = None,
            variants: Sequence[np.ndarray] = ()) -> History:
        """Train for ``epochs``; with ``patience``, stop when the validation loss has
        not improved for that many epochs and keep the best weights.

        ``variants``: cached features of augmented photos (same rows as ``features``);
        each step takes, per photo, the original or one variant at random. Validation
        always uses the originals."""
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        pool = [features, *variants]

        def batch_of(photos: np.ndarray) -> np.ndarray:
            if len(pool) == 1:
                return features[photos]
            pick = rng.integers(0, len(pool), len(photos))
            return np.stack([pool[v][p] for v, p in zip(pick, photos)])

        history = History()
        best, best_weights, waited = math.inf, None, 0
        for epoch in range(epochs):
            total, count = 0.0, 0
            for step in plan_epoch(train, rows, batch_size, rng):
                loss = self._train_step(tf.constant(batch_of(step.photos)),
                                        tf.constant(step.first, tf.int64),
                                        tf.constant(step.second, tf.int64),
                                        tf.constant(step.label))
                total += float(loss) * len(step.label)
                count += len(step.label)
            history.loss.append(total / max(count, 1))
            if validation is not None and len(validation):
                val_loss, val_auc = self.evaluate(features, rows, validation)
                history.val_loss.append(val_loss)
                history.val_auc.append(val_auc)
                if val_loss < best - 1e-7:
                    best, waited, history.best_epoch = val_loss, 0, epoch
                    if patience:
                        best_weights = self.head.get_weights()
                else:
                    waited += 1
            else:
                history.best_epoch = epoch
            if on_epoch:
                on_epoch(epoch, history)
            if patience and validation is not None and waited >= patience:
                history.stopped_early = True
                if best_weights is not None:
                    self.head.set_weights(best_weights)
                break
        return history
