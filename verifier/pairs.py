"""Pair protocols: which photo pairs are used for training, validation and test.

Photos are referred to by their index in a dataset's photo list. A :class:`PairSet`
holds three integer arrays ``first``, ``second``, ``label`` (1 = same person) per
split. Every protocol is deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .defaults import PROTOCOLS
from .errors import ProtocolError

SPLITS = ("train", "validation", "test")
FRACTIONS = (0.7, 0.2, 0.1)


@dataclass(frozen=True)
class Pairs:
    """Pairs of photo indices with labels (1 = same identity, 0 = different)."""

    first: np.ndarray
    second: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.first.shape[0])

    @property
    def positives(self) -> int:
        return int(self.label.sum())

    @property
    def negatives(self) -> int:
        return len(self) - self.positives

    def photos(self) -> np.ndarray:
        """Sorted unique photo indices used by these pairs."""
        return np.unique(np.concatenate([self.first, self.second]))


@dataclass(frozen=True)
class PairSet:
    """The three splits of a protocol."""

    protocol: str
    seed: int
    train: Pairs
    validation: Pairs
    test: Pairs

    def split(self, name: str) -> Pairs:
        if name not in SPLITS:
            raise ProtocolError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name.replace("-", "_"))

    def counts(self) -> dict[str, dict[str, int]]:
        """Pair, positive and negative counts per split."""
        return {name: {"pairs": len(p), "positive": p.positives, "negative": p.negatives}
                for name in SPLITS for p in [self.split(name)]}

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in SPLITS:
            p = self.split(name)
            out[f"{name}_first"] = p.first
            out[f"{name}_second"] = p.second
            out[f"{name}_label"] = p.label
        return out

    @classmethod
    def from_arrays(cls, protocol: str, seed: int, arrays: dict[str, np.ndarray]) -> "PairSet":
        parts = {name: Pairs(np.asarray(arrays[f"{name}_first"], dtype=np.int64),
                             np.asarray(arrays[f"{name}_second"], dtype=np.int64),
                             np.asarray(arrays[f"{name}_label"], dtype=np.int8))
                 for name in SPLITS}
        return cls(protocol, seed, **parts)


def split_sizes(n: int, fractions: Sequence[float] = FRACTIONS) -> tuple[int, int, int]:
    """Sizes of a 70/20/10 split of ``n`` items: train and validation are rounded
    down, test takes the rest (8,128 -> 5,689 / 1,625 / 814)."""
    train = int(n * fractions[0])
    validation = int(n * fractions[1])
    return train, validation, n - train - validation


def _make(first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> Pairs:
    lab = (labels[first] == labels[second]).astype(np.int8)
    return Pairs(first.astype(np.int64), second.astype(np.int64), lab)


def _all_pairs(indices: np.ndarray, ordered: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(indices, indices, indexing="ij")
    a, b = a.ravel(), b.ravel()
    keep = a != b if ordered else a < b
    return a[keep], b[keep]


def seed_protocol(labels: np.ndarray, seed: int) -> PairSet:
    """The tutorial's protocol: all ordered pairs of distinct photos, a random half
    kept, split 70/20/10. Photos appear in several splits."""
    n = len(labels)
    first, second = _all_pairs(np.arange(n), ordered=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(first))[: len(first) // 2]
    n_train, n_val, _ = split_sizes(len(order))
    parts = np.split(order, [n_train, n_train + n_val])
    made = [_make(first[p], second[p], labels) for p in parts]
    return PairSet("seed", seed, *made)


def image_disjoint_protocol(labels: np.ndarray, seed: int) -> PairSet:
    """Photos are split 70/20/10 first; all unordered pairs are formed inside each split."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_train, n_val, _ = split_sizes(n)
    groups = np.split(order, [n_train, n_train + n_val])
    made = [_make(*_all_pairs(np.sort(g), ordered=False), labels) for g in groups]
    return PairSet("image-disjoint", seed, *made)


def identity_disjoint_protocol(labels: np.ndarray, seed: int) -> PairSet:
    """People are split 70/20/10 (at least one per split); all unordered pairs are
    formed inside each split, so test people are never seen in training."""
    people = np.unique(labels)
    if len(people) < 3:
        raise ProtocolError(f"identity-disjoint needs at least 3 identities, found {len(people)}")
    rng = np.random.default_rng(seed)
    order = people[rng.permutation(len(people))]
    n_train, n_val, n_test = split_sizes(len(people))
    n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = len(people) - n_val - n_test
    groups = np.split(order, [n_train, n_train + n_val])
    made = []
    for g in groups:
        members = np.flatnonzero(np.isin(labels, g))
        made.append(_make(*_all_pairs(members, ordered=False), labels))
    return PairSet("identity-disjoint", seed, *made)


HELD_OUT_PEOPLE = 0.2
"""Share of the people the ``open-set`` protocol keeps out of training entirely."""


def open_set_protocol(labels: np.ndarray, seed: int) -> PairSet:
    """Photos never cross splits and some people never reach training: a fifth of
    the people (at least one where there are three or more) are held out whole,
    their photos shared between validation and test; every other person's photos
    are split 60/20/20 (at least one for training; validation and test get one each
    where the person has three or more). All unordered pairs are formed inside each
    split, so validation (where the threshold is calibrated) and test hold new
    photos of trained people and people training never saw."""
    rng = np.random.default_rng(seed)
    people = np.unique(labels)
    order = people[rng.permutation(len(people))]
    held = order[:max(1, int(round(len(people) * HELD_OUT_PEOPLE)))] if len(people) >= 3 else order[:0]
    groups: list[list[int]] = [[], [], []]
    for person in order:
        photos = rng.permutation(np.flatnonzero(labels == person)).tolist()
        if person in held:
            half = (len(photos) + 1) // 2
            groups[1] += photos[:half]
            groups[2] += photos[half:]
            continue
        n = len(photos)
        n_val = max(1 if n >= 3 else 0, int(round(n * 0.2)))
        n_test = max(1 if n >= 3 else 0, int(round(n * 0.2)))
        n_train = n - n_val - n_test
        groups[0] += photos[:n_train]
        groups[1] += photos[n_train:n_train + n_val]
        groups[2] += photos[n_train + n_val:]
    made = [_make(*_all_pairs(np.sort(np.array(g, dtype=np.int64)), ordered=False), labels)
            for g in groups]
    return PairSet("open-set", seed, *made)


def make_pairs(identities: Sequence[str], protocol: str = "seed", seed: int = 0) -> PairSet:
    """Build the pair splits of ``protocol`` for photos with these identities."""
    if len(identities) < 2:
        raise ProtocolError("at least two photos are needed to form pairs")
    _, labels = np.unique(np.asarray(identities, dtype=object).astype(str), return_inverse=True)
    builders = {"open-set": open_set_protocol, "seed": seed_protocol, "image-disjoint": image_disjoint_protocol,
                "identity-disjoint": identity_disjoint_protocol}
    if protocol not in builders:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    pairs = builders[protocol](labels, seed)
    if len(pairs.train) == 0:
        raise ProtocolError(f"protocol {protocol!r} left no training pairs; add photos")
    return pairs
