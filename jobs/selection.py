"""The end of training: the trained model against the network it started from, on
validation photos training never saw, the one to save, and its threshold."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from verifier import defaults as d
from verifier.pairs import PairSet
from verifier.selection import ModelScores, gallery_pairs, is_better, score

if TYPE_CHECKING:
    from verifier.images import Dataset


@dataclass(frozen=True)
class Chosen:
    selection: dict
    threshold: float | None
    rule: str


def _embeddings(trainer, views: dict[str, np.ndarray], rows: np.ndarray, tta: str,
                photos: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Clean and degraded embeddings of the cached photos under the head's current
    weights, flip-averaged as inference will be; indexed by photo (rows of photos
    not cached stay zero)."""
    def embed(name: str) -> np.ndarray:
        out = trainer.embed(views[name])
        if tta == "flip":
            mirror = "flip" if name == "clean" else f"{name}+flip"
            out = (out + trainer.embed(views[mirror])) / 2.0
        full = np.zeros((photos, out.shape[1]), np.float32)
        full[rows >= 0] = out[rows[rows >= 0]]
        return full

    degraded = [n for n in views if n not in ("clean", "flip") and not n.endswith("+flip")]
    return embed("clean"), [embed(n) for n in degraded]


def _scores(trainer, views: dict[str, np.ndarray], rows: np.ndarray, opts: "SelectionOptions",
            pairs: PairSet, people: np.ndarray, unseen: np.ndarray) -> ModelScores:
    """The head's current weights on the validation pairs. The threshold also sees each
    validation photo against every training photo of someone else, and the recall at
    it each validation photo, clean and degraded, against its person's: as a query of
    a new photo meets the gallery."""
    clean, degraded = _embeddings(trainer, views, rows, opts.tta, len(people))
    photos, gallery = pairs.validation.photos(), pairs.train.photos()
    dist, same = gallery_pairs(clean, clean, photos, gallery, people)
    # the same photos against the same gallery: ``same`` holds for every version
    positives = [dist[same]] + [gallery_pairs(v, clean, photos, gallery, people)[0][same]
                                for v in degraded]
    return score(clean, degraded, pairs.validation, unseen, opts.target_far, d.MIN_TAIL_NEGATIVES,
                 dist[~same], np.concatenate(positives))


def _table(start: ModelScores, trained: ModelScores | None) -> list[str]:
    def pct(v):
        return "-" if v is None else f"{v * 100:.3f}%"

    num = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    rows = [("EER", "eer", pct), ("EER, one photo degraded", "eer_degraded", pct),
            ("EER, people never trained on", "eer_unseen", pct),
            (f"TAR at FAR {start.target_far:g}", "tar", num),
            ("threshold (calibrated)", "threshold", num),
            ("same pairs accepted at it", "recall", num)]
    head = f"{'':32}{'starting network':>18}" + (f"{'trained':>12}" if trained else "")
    lines = [head]
    for label, key, fmt in rows:
        line = f"{label:32}{fmt(getattr(start, key)):>18}"
        if trained:
            line += f"{fmt(getattr(trained, key)):>12}"
        lines.append(line)
    return lines


class SelectionOptions(Protocol):
    """What the choice reads of ``verifier train``'s options (``TrainOptions``)."""

    tta: str
    target_far: float
    keep_trained: bool


def choose_and_calibrate(trainer, start_weights: list, views: dict[str, np.ndarray],
                         rows: np.ndarray, pairs: PairSet, dataset: "Dataset",
                         opts: SelectionOptions, echo: Callable[[str], None]) -> Chosen:
    """Score the starting network and the trained model on the validation pairs,
    keep the trained weights only when :func:`verifier.selection.is_better` (or
    ``opts.keep_trained``), and calibrate the threshold of the kept one at
    ``opts.target_far`` (:func:`_scores`)."""
    val = pairs.validation
    people = np.array([p.identity for p in dataset.photos])
    trained_people = set(people[pairs.train.photos()].tolist())
    unseen = np.array([p not in trained_people for p in people])
    seen_photos = set(pairs.train.photos().tolist())
    shared = len(set(val.photos().tolist()) & seen_photos)
    echo(f"validation: {len(val)} pairs of {len(val.photos())} photos"
         + (f" ({shared} also in training pairs: the figures are optimistic)" if shared
            else " training never saw")
         + f", {len(set(people[val.photos()]) - trained_people)} of them people never trained on")
    trained_weights = trainer.head.get_weights()
    changed = any(not np.array_equal(a, b) for a, b in zip(start_weights, trained_weights))
    trained_scores = None

    def scores() -> ModelScores:
        return _scores(trainer, views, rows, opts, pairs, people, unseen)

    if changed:
        trained_scores = scores()
        trainer.head.set_weights(start_weights)
    start_scores = scores()
    for line in _table(start_scores, trained_scores):
        echo("  " + line)
    kept = "start"
    if trained_scores is not None:
        better = is_better(trained_scores, start_scores)
        if better or opts.keep_trained:
            kept = "trained"
            trainer.head.set_weights(trained_weights)
        if better:
            echo("saving the trained model: better than the starting network on validation")
        elif opts.keep_trained:
            echo("the trained model is NOT better than the starting network on validation; "
                 "saving it anyway (--keep-trained)")
        else:
            echo("the trained model is NOT better than the starting network on validation: "
                 "saving the starting network instead (--keep-trained saves the trained one)")
    chosen = trained_scores if kept == "trained" else start_scores
    threshold, rule = chosen.threshold, chosen.rule
    if threshold is None:
        echo("no threshold calibrated (validation has no different-person pairs); "
             "`verifier evaluate` calibrates one, or pass --threshold to verify")
    else:
        rule = f"{rule} (train validation)"
        echo(f"threshold {threshold:.4f} for a false-accept rate of {opts.target_far:g} ({rule})")
    selection = {"start": start_scores.as_dict(),
                 "trained": trained_scores.as_dict() if trained_scores else None,
                 "kept": kept, "validation_pairs": len(val), "shared_with_training": shared}
    return Chosen(selection, None if threshold is None else float(threshold), rule)
