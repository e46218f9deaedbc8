"""The registered model versions: one row each, with the threshold calibrated for it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import ModelNotFound
from .schema import Embedding, Model


def ensure_model(session: Session, name: str, config: Mapping[str, Any], artifact: Path) -> Model:
    """The row of model version ``name``, registered from its config (the JSON saved
    with it) when new, with the threshold calibrated at train time where it has one."""
    row = session.scalar(select(Model).where(Model.name == name))
    if row is None:
        row = Model(name=name, backbone=config.get("backbone", "?"), config=dict(config),
                    artifact=str(artifact), threshold=config.get("threshold"),
                    threshold_rule=config.get("threshold_rule"))
        session.add(row)
        session.flush()
    return row


def get_model(session: Session, name: str) -> Model:
    """The row of model version ``name``; :class:`ModelNotFound` if never registered."""
    row = session.scalar(select(Model).where(Model.name == name))
    if row is None:
        raise ModelNotFound(f"model {name!r} is not registered in the database; "
                            "run `verifier embed --data DIR` with it first")
    return row


def model_by_id(session: Session, model_id: int | None) -> Model | None:
    """The row of a model by its id (``None`` when it is gone)."""
    return session.get(Model, model_id) if model_id is not None else None


def set_threshold(session: Session, name: str, threshold: float, rule: str) -> None:
    """Record the calibrated threshold of model version ``name`` and how it was chosen."""
    row = get_model(session, name)
    row.threshold, row.threshold_rule = float(threshold), rule


def models(session: Session) -> list[Model]:
    """Every registered model version."""
    return list(session.scalars(select(Model)))


def model_counts(session: Session) -> list[tuple[str, str, int, float | None]]:
    """``(name, backbone, embeddings, threshold)`` of every model, oldest first."""
    rows = session.execute(
        select(Model.name, Model.backbone, func.count(Embedding.id), Model.threshold)
        .outerjoin(Embedding, Embedding.model_id == Model.id)
        .group_by(Model.id).order_by(Model.created)).all()
    return [(name, backbone, int(n), threshold) for name, backbone, n, threshold in rows]
