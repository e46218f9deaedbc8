"""Cluster runs in the database: face vectors of unlabeled photos (by content and
model, stored once), and each run's groups and members.

A run is a ``job_runs`` row of kind ``cluster``; its ``counts`` hold the progress
while it runs (``done``/``total`` photos) and the outcome after. Every function here
names a run by its number among cluster runs (what users see), not its row id.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import RunNotFound
from .gallery.reads import vector_to_bytes
from .runs import finish_run, record_progress, run_by_number, start_run
from .schema import Cluster, ClusterMember, FaceVector, JobRun, RunKind, RunStatus


class StoredFace(NamedTuple):
    """One face of a photo content: ``id`` is its row (0 until :func:`store_faces`
    stores it)."""

    sha256: str
    face: int
    faces: int
    box: list[int] | None
    score: float | None
    vector: np.ndarray
    quality: float | None = None
    id: int = 0


def _stored(row: FaceVector) -> StoredFace:
    return StoredFace(row.sha256, row.face, row.faces, row.box, row.score,
                      np.frombuffer(row.vector, dtype=np.float32), row.quality, row.id)


def faces_of(session: Session, model_id: int, sha256s: Iterable[str],
             chunk: int = 500) -> dict[str, list[StoredFace]]:
    """The stored faces of each photo content under ``model_id``, in face order;
    contents never embedded are absent."""
    wanted = list(dict.fromkeys(sha256s))
    out: dict[str, list[StoredFace]] = {}
    for at in range(0, len(wanted), chunk):
        rows = session.scalars(select(FaceVector).where(
            FaceVector.model_id == model_id, FaceVector.sha256.in_(wanted[at:at + chunk]))
            .order_by(FaceVector.sha256, FaceVector.face))
        for row in rows:
            out.setdefault(row.sha256, []).append(_stored(row))
    return out


def store_faces(session: Session, model_id: int,
                faces: Sequence[StoredFace]) -> dict[str, list[StoredFace]]:
    """Store new faces (in a savepoint of the caller's transaction); a content another
    run stored meanwhile keeps that run's rows (the same model gives the same
    vectors). Returns the stored faces of every content given."""
    # read before the savepoint: on SQLite a transaction that reads first and then
    # writes cannot wait for the write lock (another writer's commit in between makes
    # its first write fail at once); one that starts with its write waits as it should
    known = set(faces_of(session, model_id, (f.sha256 for f in faces)))
    try:
        with session.begin_nested():
            session.add_all(FaceVector(sha256=f.sha256, model_id=model_id, face=f.face,
                                       faces=f.faces, box=f.box, score=f.score,
                                       quality=f.quality, vector=vector_to_bytes(f.vector))
                            for f in faces if f.sha256 not in known)
    except IntegrityError:  # a concurrent run stored one of these contents first
        pass
    return faces_of(session, model_id, (f.sha256 for f in faces))


def start(session: Session, model_id: int, params: dict, total: int = 0) -> int:
    """Record a new run of ``total`` photos (none done yet); returns its number."""
    return start_run(session, RunKind.CLUSTER, params, model_id, {"done": 0, "total": total}).number


def _run(session: Session, number: int) -> JobRun:
    run = run_by_number(session, RunKind.CLUSTER, number)
    if run is None:
        raise RunNotFound(f"no cluster run {number}")
    return run


def progress(session: Session, number: int, done: int, total: int) -> None:
    """How far running run ``number`` has come."""
    record_progress(session, _run(session, number).id, done, total)


class GroupRow(NamedTuple):
    cluster: int
    size: int
    suggestion: str | None
    distance: float | None


class MemberRow(NamedTuple):
    cluster: int | None
    face_id: int
    photo: str
    source: str | None
    label: int | None = None
    """The face's group, also when that group is too small to show (``cluster`` None)."""


def previous_groups(session: Session, model_id: int, number: int
                    ) -> tuple[dict[frozenset[int], int], int]:
    """The groups of the last finished cluster run of ``model_id`` before run
    ``number`` (by their members' face ids), and the largest group id any earlier
    run of the model used."""
    before = _run(session, number).id
    last = session.scalar(select(JobRun.id).where(
        JobRun.kind == RunKind.CLUSTER, JobRun.model_id == model_id, JobRun.status == RunStatus.DONE,
        JobRun.id < before).order_by(JobRun.id.desc()).limit(1))
    top = session.scalar(select(func.max(Cluster.cluster)).join(JobRun, JobRun.id == Cluster.run_id)
                         .where(JobRun.model_id == model_id, JobRun.id < before))
    groups: dict[int, set[int]] = {}
    if last is not None:
        for cluster, face_id in session.execute(select(ClusterMember.cluster, ClusterMember.face_id)
                                                .where(ClusterMember.run_id == last,
                                                       ClusterMember.cluster.is_not(None))):
            groups.setdefault(cluster, set()).add(face_id)
    return {frozenset(v): k for k, v in groups.items()}, int(top if top is not None else -1)


def latest_done(session: Session, model_id: int) -> int | None:
    """The number of the model's most recent finished cluster run (``None``: none)."""
    return session.scalar(select(JobRun.number).where(
        JobRun.kind == RunKind.CLUSTER, JobRun.model_id == model_id, JobRun.status == RunStatus.DONE)
        .order_by(JobRun.id.desc()).limit(1))


def last_done(session: Session, model_id: int, number: int, origin: str | None = None) -> int | None:
    """The number of the last finished cluster run of ``model_id`` before run
    ``number``, and with ``origin`` the last one that front end started (``None``:
    there is none)."""
    before = _run(session, number).id
    rows = session.execute(select(JobRun.number, JobRun.params).where(
        JobRun.kind == RunKind.CLUSTER, JobRun.model_id == model_id, JobRun.status == RunStatus.DONE,
        JobRun.id < before).order_by(JobRun.id.desc()).limit(1000)).all()
    for found, params in rows:
        if origin is None or (params or {}).get("origin", "cli") == origin:
            return found
    return None


def finish(session: Session, number: int, groups: Sequence[GroupRow],
           members: Sequence[MemberRow], counts: dict) -> None:
    """Record a run's groups and members and mark it done."""
    run_id = _run(session, number).id
    session.execute(delete(Cluster).where(Cluster.run_id == run_id))
    session.execute(delete(ClusterMember).where(ClusterMember.run_id == run_id))
    session.add_all(Cluster(run_id=run_id, cluster=g.cluster, size=g.size,
                            suggestion=g.suggestion, distance=g.distance) for g in groups)
    session.add_all(ClusterMember(run_id=run_id, cluster=m.cluster, face_id=m.face_id,
                                  photo=m.photo[:1024], source=(m.source or "")[-255:] or None,
                                  label=m.label)
                    for m in members)
    finish_run(session, run_id, RunStatus.DONE, counts)


def fail(session: Session, number: int, error: str) -> None:
    """Mark a run failed with its error, its counts kept."""
    finish_run(session, _run(session, number).id, RunStatus.FAILED, error=error)


class Member(NamedTuple):
    cluster: int | None
    photo: str
    source: str | None
    face: StoredFace
    label: int | None = None


class StoredRun(NamedTuple):
    number: int
    model_id: int | None
    status: RunStatus
    params: dict
    counts: dict
    error: str | None
    groups: list[Cluster]
    members: list[Member]


def get_run(session: Session, number: int, *, members: bool = True) -> StoredRun:
    """Cluster run ``number`` with its groups (and, with ``members``, every face)."""
    run = _run(session, number)
    run_id = run.id
    groups = list(session.scalars(select(Cluster).where(Cluster.run_id == run_id)
                                  .order_by(Cluster.size.desc(), Cluster.cluster)))
    found: list[Member] = []
    if members:
        rows = session.execute(select(ClusterMember, FaceVector)
                               .join(FaceVector, FaceVector.id == ClusterMember.face_id)
                               .where(ClusterMember.run_id == run_id).order_by(ClusterMember.id))
        found = [Member(m.cluster, m.photo, m.source, _stored(f), m.label) for m, f in rows]
    return StoredRun(run.number, run.model_id, run.status, dict(run.params or {}),
                     dict(run.counts or {}), run.error, groups, found)


def member(session: Session, number: int, cluster: int | None, index: int) -> Member:
    """Face ``index`` (in the run's order) of group ``cluster`` of a run (``None``: the
    unclustered faces), read alone: a thumbnail does not load the whole run."""
    run_id = _run(session, number).id
    where = ClusterMember.cluster.is_(None) if cluster is None else ClusterMember.cluster == cluster
    row = session.execute(select(ClusterMember, FaceVector)
                          .join(FaceVector, FaceVector.id == ClusterMember.face_id)
                          .where(ClusterMember.run_id == run_id, where)
                          .order_by(ClusterMember.id).offset(index).limit(1)).first()
    if row is None:
        raise RunNotFound(f"cluster run {number} has no face {index} in group {cluster}")
    m, f = row
    return Member(m.cluster, m.photo, m.source, _stored(f))


def runs(session: Session, limit: int = 20) -> list[JobRun]:
    """The most recent cluster runs, newest first."""
    return list(session.scalars(select(JobRun).where(JobRun.kind == RunKind.CLUSTER)
                                .order_by(JobRun.id.desc()).limit(limit)))


def mark_named(session: Session, number: int, cluster: int, name: str) -> None:
    """Record that group ``cluster`` of run ``number`` was named ``name``."""
    row = session.scalar(select(Cluster).where(Cluster.run_id == _run(session, number).id,
                                               Cluster.cluster == cluster))
    if row is None:
        raise RunNotFound(f"cluster run {number} has no group {cluster}")
    row.named = name
