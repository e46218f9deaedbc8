"""Evaluation runs and the distance of every pair they scored."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from .schema import Identity, Image, JobRun, Model, PairScore, RunKind, RunStatus

INSERT_CHUNK = 5000
"""Pair scores are written this many rows per statement: bounded memory for long lists."""


def store_pair_scores(session: Session, run_id: int, first: np.ndarray, second: np.ndarray,
                      labels: np.ndarray, distances: np.ndarray) -> None:
    """Store a run's per-pair distances (image ids, label, distance), chunk by chunk."""
    for start in range(0, len(distances), INSERT_CHUNK):
        chunk = slice(start, start + INSERT_CHUNK)
        session.execute(PairScore.__table__.insert(), [
            {"run_id": run_id, "first_image_id": int(a), "second_image_id": int(b),
             "label": int(label), "distance": float(dist)}
            for a, b, label, dist in zip(first[chunk], second[chunk], labels[chunk], distances[chunk])])


def _finished():
    return select(JobRun).where(JobRun.kind == RunKind.EVALUATE, JobRun.status == RunStatus.DONE)


def evaluation_run(session: Session, number: int) -> JobRun | None:
    """Finished evaluation run ``number``, if there is one."""
    return session.scalar(_finished().where(JobRun.number == int(number)))


def latest_evaluation(session: Session) -> JobRun | None:
    """The newest finished evaluation run, if there is one."""
    return session.scalar(_finished().order_by(JobRun.id.desc()).limit(1))


def evaluation_runs(session: Session, limit: int = 100) -> list[tuple[JobRun, str | None]]:
    """Finished evaluation runs, newest first, with their model's name."""
    rows = session.execute(select(JobRun, Model.name).outerjoin(Model, JobRun.model_id == Model.id)
                           .where(JobRun.kind == RunKind.EVALUATE, JobRun.status == RunStatus.DONE)
                           .order_by(JobRun.id.desc()).limit(limit)).all()
    return [(run, model) for run, model in rows]


class PairSide(NamedTuple):
    """One photo of a scored pair."""

    path: str
    identity: str
    sha256: str
    quality: float | None


class ScoredPair(NamedTuple):
    """One pair an evaluation run scored, in the order it was stored."""

    a: PairSide
    b: PairSide
    label: int
    distance: float


def scored_pairs(session: Session, run_id: int) -> list[ScoredPair]:
    """Every pair of evaluation run ``run_id`` with both photos and their identities."""
    a, b = aliased(Image), aliased(Image)
    ia, ib = aliased(Identity), aliased(Identity)
    rows = session.execute(
        select(a.path, ia.name, a.sha256, a.quality, b.path, ib.name, b.sha256, b.quality,
               PairScore.label, PairScore.distance)
        .join(a, PairScore.first_image_id == a.id).join(b, PairScore.second_image_id == b.id)
        .join(ia, a.identity_id == ia.id).join(ib, b.identity_id == ib.id)
        .where(PairScore.run_id == run_id).order_by(PairScore.id)).all()
    return [ScoredPair(PairSide(*row[0:4]), PairSide(*row[4:8]), int(row[8]), float(row[9]))
            for row in rows]
