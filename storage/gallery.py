"""Queries and updates of the gallery tables, one unit of work per call site."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .errors import ModelNotFound
from .schema import Embedding, Identity, Image, JobRun, Model, utcnow


def identity_id(session: Session, name: str) -> int:
    """The id of identity ``name``, created when new."""
    found = session.scalar(select(Identity.id).where(Identity.name == name))
    if found is not None:
        return found
    row = Identity(name=name)
    session.add(row)
    session.flush()
    return row.id


def ensure_model(session: Session, name: str, config: dict, artifact: Path) -> Model:
    """The row of model version ``name``, registered from its config when new."""
    row = session.scalar(select(Model).where(Model.name == name))
    if row is None:
        row = Model(name=name, backbone=config.get("backbone", "?"), config=config,
                    artifact=str(artifact))
        session.add(row)
        session.flush()
    return row


def get_model(session: Session, name: str) -> Model:
    row = session.scalar(select(Model).where(Model.name == name))
    if row is None:
        raise ModelNotFound(f"model {name!r} is not registered in the database; "
                            "run `verifier embed --data DIR` with it first")
    return row


def model_vectors(session: Session, model_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of every stored embedding of a model, sorted by id."""
    rows = session.execute(select(Embedding.id, Embedding.vector)
                           .where(Embedding.model_id == model_id).order_by(Embedding.id)).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    return ids, vectors


def vectors_of(session: Session, ids: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """The stored vectors of embedding ``ids``, one row per id in that order."""
    ids = np.asarray(ids, dtype=np.int64)
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), chunk):
        part = [int(i) for i in ids[start:start + chunk]]
        found.update(session.execute(select(Embedding.id, Embedding.vector)
                                     .where(Embedding.id.in_(part))).tuples().all())
    missing = [int(i) for i in ids if int(i) not in found]
    if missing:
        raise KeyError(f"embeddings {missing[:5]} are not in the database")
    if not len(ids):
        return np.zeros((0, 0), np.float32)
    return np.stack([np.frombuffer(found[int(i)], dtype=np.float32) for i in ids])


def iter_model_vectors(session: Session, model_id: int, chunk: int = 100_000):
    """``(ids, vectors)`` of a model's embeddings, ``chunk`` rows at a time, by id."""
    last = -1
    while True:
        rows = session.execute(select(Embedding.id, Embedding.vector)
                               .where(Embedding.model_id == model_id, Embedding.id > last)
                               .order_by(Embedding.id).limit(chunk)).all()
        if not rows:
            return
        last = rows[-1][0]
        yield (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
               np.stack([np.frombuffer(r[1], np.float32) for r in rows]))


def model_ids(session: Session, model_id: int) -> np.ndarray:
    ids = session.scalars(select(Embedding.id).where(Embedding.model_id == model_id)).all()
    return np.asarray(sorted(ids), dtype=np.int64)


def model_state(session: Session, model_id: int) -> tuple[int, int]:
    """``(count, largest id)`` of a model's embeddings: a cheap way to notice that
    another process changed them."""
    row = session.execute(select(func.count(Embedding.id), func.max(Embedding.id))
                          .where(Embedding.model_id == model_id)).one()
    return int(row[0]), int(row[1] or 0)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


@dataclass(frozen=True)
class GalleryPhoto:
    """A stored photo with its identity, as later jobs read it."""

    image_id: int
    path: str
    sha256: str
    identity: str


def embedded_photos(session: Session, model_id: int,
                    ids: np.ndarray | None = None) -> dict[int, GalleryPhoto]:
    """Embedding id -> photo, for a model (only embedding ``ids`` when given)."""
    query = (select(Embedding.id, Image.id, Image.path, Image.sha256, Identity.name)
             .join(Image, Embedding.image_id == Image.id)
             .join(Identity, Image.identity_id == Identity.id)
             .where(Embedding.model_id == model_id))
    if ids is None:
        chunks = [session.execute(query)]
    else:
        chunks = (session.execute(query.where(Embedding.id.in_([int(i) for i in ids[a:a + 10_000]])))
                  for a in range(0, len(ids), 10_000))
    return {r[0]: GalleryPhoto(r[1], r[2], r[3], r[4]) for rows in chunks for r in rows}


def delete_embeddings_of(session: Session, image_ids: list[int]) -> int:
    if not image_ids:
        return 0
    result = session.execute(delete(Embedding).where(Embedding.image_id.in_(image_ids)))
    return int(result.rowcount or 0)


def identity_counts(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(Identity.name, func.count(Image.id))
        .join(Image, Image.identity_id == Identity.id)
        .where(Image.status == "ok").group_by(Identity.name).order_by(Identity.name)).all()
    return [(r[0], int(r[1])) for r in rows]


def model_counts(session: Session) -> list[tuple[str, str, int, float | None]]:
    rows = session.execute(
        select(Model.name, Model.backbone, func.count(Embedding.id), Model.threshold)
        .outerjoin(Embedding, Embedding.model_id == Model.id)
        .group_by(Model.id).order_by(Model.created)).all()
    return [(r[0], r[1], int(r[2]), r[3]) for r in rows]


def start_run(session: Session, kind: str, params: dict, model_id: int | None = None) -> JobRun:
    run = JobRun(kind=kind, params=params, model_id=model_id, status="running")
    session.add(run)
    session.flush()
    return run


def finish_run(session: Session, run_id: int, status: str, counts: dict | None = None,
               error: str | None = None) -> None:
    run = session.get(JobRun, run_id)
    run.status = status
    run.ended = utcnow()
    run.counts = counts or {}
    run.error = error


def identities_page(session: Session, offset: int = 0, limit: int = 50
                    ) -> tuple[int, list[tuple[str, int]]]:
    """``(total, [(name, photos)])``: identities with at least one photo in the
    gallery, by name."""
    counted = (select(Identity.name, func.count(Image.id).label("n"))
               .join(Image, Image.identity_id == Identity.id)
               .where(Image.status == "ok").group_by(Identity.name))
    total = session.scalar(select(func.count()).select_from(counted.subquery()))
    rows = session.execute(counted.order_by(Identity.name).offset(offset).limit(limit)).all()
    return int(total or 0), [(r[0], int(r[1])) for r in rows]


def identity_photos(session: Session, name: str) -> list[Image]:
    """The gallery photos of identity ``name`` (empty when unknown)."""
    return list(session.scalars(select(Image).join(Identity, Image.identity_id == Identity.id)
                                .where(Identity.name == name, Image.status == "ok")
                                .order_by(Image.id)))


def gallery_photo(session: Session, photo_id: int) -> Image | None:
    row = session.get(Image, int(photo_id))
    return row if row is not None and row.status == "ok" else None


def evaluation_runs(session: Session, limit: int = 100) -> list[tuple[JobRun, str | None]]:
    """Finished evaluation runs, newest first, with their model's name."""
    rows = session.execute(select(JobRun, Model.name).outerjoin(Model, JobRun.model_id == Model.id)
                           .where(JobRun.kind == "evaluate", JobRun.status == "ok")
                           .order_by(JobRun.id.desc()).limit(limit)).all()
    return [(r[0], r[1]) for r in rows]
