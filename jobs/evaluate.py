"""The evaluate use case: score a model's saved pair splits from stored embeddings,
calibrate the threshold on validation, store the run with per-pair distances."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import evaluations, gallery, models, runs
from storage.schema import ImageStatus, JobRun, RunKind, RunStatus
from storage.workspace import Workspace
from verifier import metrics
from verifier.defaults import TUTORIAL_THRESHOLD
from verifier.errors import MetricError
from verifier.losses import euclidean_distance_np

from .embed import embed_gallery
from .models import LoadedModel, load_model, read_config
from .train import load_pairs, training_photos


class EvaluationError(MetricError):
    """An evaluation cannot be run (photos gone, no pairs in the split)."""


@dataclass
class Evaluation:
    run: int
    """The run's number among evaluation runs."""
    model: str
    split: str
    threshold: float
    threshold_rule: str
    metrics: dict
    tutorial: dict
    validation: dict | None = None
    folds: dict | None = None
    distances: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    labels: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    overlap: dict | None = None
    unscored: list[dict] = field(default_factory=list)
    protocol: str = ""

    def as_dict(self) -> dict:
        return {"run": self.run, "model": self.model, "split": self.split,
                "threshold": self.threshold, "threshold_rule": self.threshold_rule,
                "metrics": self.metrics, "tutorial_threshold_0.5": self.tutorial,
                "validation": self.validation, "folds": self.folds, "protocol": self.protocol,
                "overlap": self.overlap, "unscored": self.unscored}


def photo_embeddings(session: Session, model_id: int, root: Path, photos: list[dict],
                     embed: Callable[[list[Path]], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(image_ids, vectors)`` for the training-time photo list, matched by content.
    A photo taken out of the gallery (removed, so its vector went with it) whose file
    is unchanged is embedded again with ``embed``, for this evaluation only: who is
    enrolled now does not change what the model's saved splits are."""
    by_sha = gallery.folder_vectors(session, root, model_id)
    wanted = [p for p in photos if p["sha256"] not in by_sha]
    if wanted:
        stored = gallery.folder_photos(session, root)
        gone = [p for p in wanted if (row := stored.get(str(root / p["path"]))) is None
                or row.sha256 != p["sha256"] or not (root / p["path"]).is_file()]
        if gone:
            raise EvaluationError(
                f"{len(gone)} photos of the saved splits are not under {root} with the same "
                f"content (first: {root / gone[0]['path']}); restore them there or retrain")
        vectors = embed([root / p["path"] for p in wanted])
        for p, vector in zip(wanted, vectors):
            by_sha[p["sha256"]] = (stored[str(root / p["path"])].id, vector.astype(np.float32).tobytes())
    ids = np.array([by_sha[p["sha256"]][0] for p in photos], dtype=np.int64)
    vectors = np.stack([np.frombuffer(by_sha[p["sha256"]][1], dtype=np.float32) for p in photos])
    return ids, vectors


def evaluate(ws: Workspace, sessions: sessionmaker[Session], *, model: str | None = None,
             split: str = "test", threshold: float | None = None,
             target_far: float | None = None, folds: int | None = None, quiet: bool = True,
             loaded: LoadedModel | None = None) -> Evaluation:
    """Score every pair of ``split`` at ``threshold``, else at ``target_far``
    calibrated on validation (for this run only), else at the model's threshold
    (calibrated at train time); a model without one is calibrated on validation
    for best accuracy and keeps it."""
    name = loaded.name if loaded else ws.resolve_model(model)
    config = read_config(ws, name)
    if not config.data_root:
        raise EvaluationError(f"model {name} records no training folder; score a pair list with "
                              "--pairs FILE --data DIR instead")
    root = Path(config.data_root)
    if not root.is_dir():
        raise EvaluationError(f"the training folder {root} is gone; evaluation needs its photos")
    pairs, photos = load_pairs(ws, name)
    # photos not yet in the gallery are embedded first (nothing is embedded twice)
    embed_gallery(ws, sessions, root, model=name, quiet=quiet, loaded=loaded)

    def embed_files(paths: list[Path]) -> np.ndarray:
        model = loaded or load_model(ws, name)
        return model.embed(np.stack([model.preparer.prepare(path).pixels for path in paths]))

    with sessions() as session:
        stored = models.get_model(session, name)
        stored_threshold, stored_rule = stored.threshold, stored.threshold_rule
        image_ids, vectors = photo_embeddings(session, stored.id, root, photos, embed_files)

    def distances(p) -> np.ndarray:
        return euclidean_distance_np(vectors[p.first], vectors[p.second])

    chosen = pairs.split(split)
    if not len(chosen):
        raise EvaluationError(f"the {split} split of {name} has no pairs")
    d = distances(chosen)
    val = pairs.validation
    vd = distances(val)
    threshold, rule, store = _threshold(threshold, target_far, stored_threshold, stored_rule, vd, val.label)
    validation = metrics.threshold_metrics(vd, val.label, threshold) if rule != "given" else None
    result = metrics.summary(d, chosen.label, threshold)
    tutorial = metrics.threshold_metrics(d, chosen.label, TUTORIAL_THRESHOLD)
    fold_result = metrics.kfold_accuracy(d, chosen.label, folds) if folds else None
    overlap = split_overlap(pairs, split, [p["identity"] for p in photos])
    params = {"split": split, "threshold": threshold, "threshold_rule": rule,
              "target_far": target_far, "folds": folds}
    outcome = {"metrics": result, "tutorial": tutorial, "validation": validation,
               "folds": fold_result, "protocol": config.protocol, "overlap": overlap}
    with sessions.begin() as session:
        if store:
            models.set_threshold(session, name, threshold, rule)
        number = _record(session, stored.id, params, outcome, image_ids[chosen.first],
                         image_ids[chosen.second], chosen.label, d)
    return Evaluation(number, name, split, float(threshold), rule, result, tutorial, validation,
                      fold_result, d, chosen.label, overlap=overlap, protocol=config.protocol)


def _threshold(given: float | None, target_far: float | None, stored: float | None,
               stored_rule: str | None, distances: np.ndarray, labels: np.ndarray
               ) -> tuple[float, str, bool]:
    """The threshold an evaluation scores at, its rule, and whether the model keeps
    it: ``given``, else calibrated at ``target_far`` on validation (this report only),
    else the model's, else the best accuracy on validation (a model saved before
    thresholds were calibrated at train time keeps that one)."""
    if given is not None:
        return given, "given", False
    if target_far is not None:
        return (metrics.calibrated_threshold(distances, labels, target_far)[0],
                f"far<={target_far:g} on validation, this report only", False)
    if stored is not None:
        return stored, stored_rule or "the model's", False
    return metrics.best_accuracy_threshold(distances, labels), "best-accuracy", True


def _record(session: Session, model_id: int, params: dict, outcome: dict, first: np.ndarray,
            second: np.ndarray, labels: np.ndarray, distances: np.ndarray) -> int:
    """Store a finished evaluation run with the distance of every pair it scored;
    returns its number."""
    run = runs.start_run(session, RunKind.EVALUATE, params, model_id)
    evaluations.store_pair_scores(session, run.id, first, second, labels, distances)
    runs.finish_run(session, run.id, RunStatus.DONE, outcome)
    return run.number


def split_overlap(pairs, split: str, identities: list[str]) -> dict:
    """How much the scored split shares with the training pairs: photos, people, and
    pairs with at least one photo seen in training."""
    train = pairs.train
    seen = set(train.first.tolist()) | set(train.second.tolist())
    seen_people = {identities[i] for i in seen}
    chosen = pairs.split(split)
    mine = set(chosen.first.tolist()) | set(chosen.second.tolist())
    touching = sum((a in seen) or (b in seen) for a, b in zip(chosen.first, chosen.second))
    return {"photos": len(mine), "photos_in_training": len(mine & seen),
            "identities": len({identities[i] for i in mine}),
            "identities_in_training": len({identities[i] for i in mine} & seen_people),
            "pairs": len(chosen), "pairs_with_a_training_photo": int(touching)}


def overlap_warning(overlap: dict | None) -> str | None:
    """A sentence for reports when scored pairs share photos or people with training."""
    if not overlap:
        return None
    if overlap.get("photos_in_training"):
        return (f"{overlap['pairs_with_a_training_photo']} of {overlap['pairs']} pairs contain a "
                f"photo the model was trained on ({overlap['photos_in_training']} of "
                f"{overlap['photos']} photos, {overlap['identities_in_training']} of "
                f"{overlap['identities']} people): these figures are optimistic, not a measure "
                "of new faces")
    if overlap.get("identities_in_training"):
        return (f"{overlap['identities_in_training']} of {overlap['identities']} people were seen "
                "in training (matched by name; no photo has the content of a training photo, "
                "but a re-encoded copy would not be recognised): closed-set figures, not a "
                "measure of people the model never saw")
    return None


def latest_run(session: Session, number: int | None = None) -> JobRun:
    """Finished evaluation run ``number`` (default: the newest one)."""
    run = (evaluations.latest_evaluation(session) if number is None
           else evaluations.evaluation_run(session, number))
    if run is None:
        raise EvaluationError(f"no evaluation run {number}" if number is not None else
                              "no evaluation yet; run `verifier evaluate` first")
    return run


def evaluate_pairs(ws: Workspace, sessions: sessionmaker[Session], pairs_file: Path, data: Path, *,
                   model: str | None = None, threshold: float | None = None,
                   folds: int | None = None, quiet: bool = True,
                   loaded: LoadedModel | None = None) -> Evaluation:
    """Score an external pair list (LFW's ``pairs.txt`` or a CSV) against the photos
    in ``data``, embedding any not yet embedded (content-addressed, as ``embed``).

    Folds come from the file (LFW: the threshold is chosen on nine folds and measured
    on the tenth), or ``folds`` random stratified ones. Pairs whose photos are missing
    or unusable are listed with reasons, never dropped silently. The threshold of the
    headline metrics is ``threshold``, else the model's calibrated one, else the best
    on these pairs (marked optimistic)."""
    from verifier.pairlists import read_pair_list

    listing = read_pair_list(pairs_file)
    name = loaded.name if loaded else ws.resolve_model(model)
    root = Path(data).resolve()
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a folder of photos")
    embed_gallery(ws, sessions, root, model=name, quiet=quiet, loaded=loaded)
    wanted = {p for pair in listing.pairs for p in (pair.a, pair.b)}
    found, model_id, calibrated = _listed_photos(sessions, name, root, wanted)
    scored, unscored = _scorable(listing.pairs, found)
    if not scored:
        raise EvaluationError(f"none of the {len(listing.pairs)} pairs of {pairs_file} can be "
                              f"scored with photos under {root} (first: {unscored[0]['reason']})")
    vec = {rel: np.frombuffer(found[rel].vector, dtype=np.float32) for p in scored for rel in (p.a, p.b)}
    d = euclidean_distance_np(np.stack([vec[p.a] for p in scored]), np.stack([vec[p.b] for p in scored]))
    y = np.array([p.label for p in scored], dtype=np.int64)
    if threshold is not None:
        rule = "given"
    elif calibrated is not None:
        threshold, rule = calibrated, "calibrated on the model's validation split"
    else:
        threshold, rule = metrics.best_accuracy_threshold(d, y), "best on these pairs (optimistic)"
    if listing.folds:
        fold_result = metrics.folds_accuracy(d, y, np.array([p.fold for p in scored]))
    elif folds:
        fold_result = metrics.kfold_accuracy(d, y, folds)
    else:
        fold_result = None
    result = metrics.summary(d, y, threshold)
    tutorial = metrics.threshold_metrics(d, y, TUTORIAL_THRESHOLD)
    overlap = _overlap(ws, name, {rel: found[rel].sha256 for rel in vec}, scored)
    protocol = f"external {listing.format} list" + (f", {listing.folds} folds from the file"
                                                     if listing.folds else "")
    params = {"split": "external", "pairs_file": str(Path(pairs_file).resolve()),
              "format": listing.format, "data": str(root), "threshold": float(threshold),
              "threshold_rule": rule, "folds": fold_result["folds"] if fold_result else None}
    outcome = {"metrics": result, "tutorial": tutorial, "folds": fold_result, "protocol": protocol,
               "overlap": overlap, "unscored": unscored, "listed": len(listing.pairs)}
    with sessions.begin() as session:
        number = _record(session, model_id, params, outcome, np.array([found[p.a].id for p in scored]),
                         np.array([found[p.b].id for p in scored]), y, d)
    return Evaluation(number, name, "external", float(threshold), rule, result, tutorial, None,
                      fold_result, d, y, overlap=overlap, unscored=unscored, protocol=protocol)


def _listed_photos(sessions: sessionmaker[Session], name: str, root: Path, wanted: set[str]
                   ) -> tuple[dict, int, float | None]:
    """The stored rows (path, id, sha256, status, reason, vector) of the listed photos
    under ``root``, by path relative to it; the model's id and calibrated threshold."""
    with sessions() as session:
        model_row = models.get_model(session, name)
        rows = gallery.folder_photos_with_vectors(session, root, model_row.id)
    cut = len(str(root)) + 1
    return ({row.path[cut:]: row for row in rows if row.path[cut:] in wanted}, model_row.id,
            model_row.threshold)


def _scorable(pairs: list, found: dict) -> tuple[list, list[dict]]:
    """The pairs whose two photos are stored and embedded, and the others with why."""
    def problem(rel: str) -> str | None:
        row = found.get(rel)
        if row is None:
            return "missing"
        if row.status != ImageStatus.OK:
            return row.reason or row.status.value
        return None if row.vector is not None else "not embedded"

    scored, unscored = [], []
    for pair in pairs:
        reasons = [f"{rel}: {why}" for rel in (pair.a, pair.b) if (why := problem(rel))]
        if reasons:
            unscored.append({"line": pair.line, "a": pair.a, "b": pair.b, "reason": "; ".join(reasons)})
        else:
            scored.append(pair)
    return scored, unscored


def _overlap(ws: Workspace, name: str, scored_photos: dict[str, str], scored: list) -> dict:
    """How much of the scored photos (relative path -> sha256) and their people the
    model was trained on."""
    trained_on = training_photos(ws.model_dir(name))
    trained = {p["sha256"] for p in trained_on}
    trained_people = {p["identity"] for p in trained_on}
    in_training = {rel for rel, sha in scored_photos.items() if sha in trained}
    people = {rel.split("/")[0] for rel in scored_photos}
    return {"photos": len(scored_photos), "photos_in_training": len(in_training),
            "pairs": len(scored),
            "pairs_with_a_training_photo": sum(p.a in in_training or p.b in in_training
                                               for p in scored),
            "identities": len(people), "identities_in_training": len(people & trained_people)}
