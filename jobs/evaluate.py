"""The evaluate use case: score a model's saved pair splits from stored embeddings,
calibrate the threshold on validation, store the run with per-pair distances."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.schema import Embedding, Image, JobRun, Model, PairScore
from storage.workspace import Workspace
from verifier import metrics
from verifier.defaults import TUTORIAL_THRESHOLD
from verifier.errors import MetricError
from verifier.losses import euclidean_distance_np

from .embed import embed_gallery
from .models import LoadedModel, read_config
from .train import load_pairs


class EvaluationError(MetricError):
    """An evaluation cannot be run (photos gone, no pairs in the split)."""


@dataclass
class Evaluation:
    run_id: int
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

    def as_dict(self) -> dict:
        return {"run": self.run_id, "model": self.model, "split": self.split,
                "threshold": self.threshold, "threshold_rule": self.threshold_rule,
                "metrics": self.metrics, "tutorial_threshold_0.5": self.tutorial,
                "validation": self.validation, "folds": self.folds}


def photo_embeddings(session: Session, model_id: int, root: Path,
                     photos: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``(image_ids, vectors)`` for the training-time photo list, matched by content."""
    rows = session.execute(
        select(Image.id, Image.sha256, Embedding.vector)
        .join(Embedding, Embedding.image_id == Image.id)
        .where(Embedding.model_id == model_id,
               Image.path.startswith(str(root) + "/", autoescape=True))).all()
    by_sha = {r[1]: (r[0], r[2]) for r in rows}
    missing = [p["path"] for p in photos if p["sha256"] not in by_sha]
    if missing:
        raise EvaluationError(
            f"{len(missing)} photos of the saved splits are not in the gallery with the same "
            f"content (first: {root / missing[0]}); restore them under {root} or retrain")
    ids = np.array([by_sha[p["sha256"]][0] for p in photos], dtype=np.int64)
    vectors = np.stack([np.frombuffer(by_sha[p["sha256"]][1], dtype=np.float32) for p in photos])
    return ids, vectors


def evaluate(ws: Workspace, factory: sessionmaker[Session], *, model: str | None = None,
             split: str = "test", threshold: float | None = None,
             target_far: float | None = None, folds: int | None = None, quiet: bool = True,
             loaded: LoadedModel | None = None) -> Evaluation:
    """Score every pair of ``split``; calibrate on validation unless ``threshold``."""
    name = loaded.name if loaded else ws.resolve_model(model)
    config = read_config(ws, name)
    root = Path(config["data_root"])
    if not root.is_dir():
        raise EvaluationError(f"the training folder {root} is gone; evaluation needs its photos")
    pairs, photos = load_pairs(ws, name)
    # photos not yet in the gallery are embedded first (nothing is embedded twice)
    embed_gallery(ws, factory, root, model=name, quiet=quiet, loaded=loaded)
    with factory() as session:
        model_row = gallery.get_model(session, name)
        image_ids, vectors = photo_embeddings(session, model_row.id, root, photos)

    def distances(p) -> np.ndarray:
        return euclidean_distance_np(vectors[p.first], vectors[p.second])

    chosen = pairs.split(split)
    if not len(chosen):
        raise EvaluationError(f"the {split} split of {name} has no pairs")
    d = distances(chosen)
    validation = None
    if threshold is not None:
        rule = "given"
    else:
        val = pairs.validation
        vd = distances(val)
        if target_far is not None:
            threshold, rule = metrics.far_threshold(vd, val.label, target_far), f"far<={target_far:g}"
        else:
            threshold, rule = metrics.best_accuracy_threshold(vd, val.label), "best-accuracy"
        validation = metrics.threshold_metrics(vd, val.label, threshold)
    result = metrics.summary(d, chosen.label, threshold)
    tutorial = metrics.threshold_metrics(d, chosen.label, TUTORIAL_THRESHOLD)
    fold_result = metrics.kfold_accuracy(d, chosen.label, folds) if folds else None

    with factory.begin() as session:
        model_row = session.scalar(select(Model).where(Model.name == name))
        if rule != "given":
            model_row.threshold, model_row.threshold_rule = float(threshold), rule
        run = gallery.start_run(session, "evaluate", {
            "split": split, "threshold": threshold, "threshold_rule": rule,
            "target_far": target_far, "folds": folds}, model_row.id)
        session.execute(PairScore.__table__.insert(), [
            {"run_id": run.id, "first_image_id": int(image_ids[a]),
             "second_image_id": int(image_ids[b]), "label": int(y), "distance": float(dist)}
            for a, b, y, dist in zip(chosen.first, chosen.second, chosen.label, d)])
        gallery.finish_run(session, run.id, "ok", {"metrics": result, "tutorial": tutorial,
                                                   "validation": validation, "folds": fold_result})
        run_id = run.id
    return Evaluation(run_id, name, split, float(threshold), rule, result, tutorial, validation,
                      fold_result, d, chosen.label)


def latest_run(session: Session, run_id: int | None = None) -> JobRun:
    query = select(JobRun).where(JobRun.kind == "evaluate", JobRun.status == "ok")
    if run_id is not None:
        query = query.where(JobRun.id == run_id)
    run = session.scalar(query.order_by(JobRun.id.desc()).limit(1))
    if run is None:
        raise EvaluationError(f"no evaluation run {run_id}" if run_id is not None else
                              "no evaluation yet; run `verifier evaluate` first")
    return run
