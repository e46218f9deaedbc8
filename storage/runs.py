"""Job runs (embed, evaluate, cluster): what each was asked, how it ended, its counts."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .schema import JobRun, RunKind, RunStatus, utcnow

ERROR_CHARS = 2000
"""The most characters of a failed run's error that are kept."""

NUMBER_TRIES = 10
"""Numbers tried for a new run when other processes start runs of its kind at once."""


def start_run(session: Session, kind: RunKind, params: dict, model_id: int | None = None,
              counts: dict | None = None) -> JobRun:
    """Record a new run, ``running``, numbered after the last run of its kind (in a
    savepoint: a number another process took first is taken again, one higher)."""
    kind = RunKind(kind)
    for _ in range(NUMBER_TRIES):
        number = (session.scalar(select(func.max(JobRun.number)).where(JobRun.kind == kind)) or 0) + 1
        run = JobRun(kind=kind, number=number, params=params, model_id=model_id,
                     status=RunStatus.RUNNING, counts=counts or {})
        try:
            with session.begin_nested():
                session.add(run)
        except IntegrityError:
            continue
        return run
    raise IntegrityError(f"no free {kind} run number after {NUMBER_TRIES} tries", None, None)


def run_by_number(session: Session, kind: RunKind, number: int) -> JobRun | None:
    """Run ``number`` of ``kind``, if there is one."""
    return session.scalar(select(JobRun).where(JobRun.kind == RunKind(kind), JobRun.number == int(number)))


def finish_run(session: Session, run_id: int, status: RunStatus, counts: dict | None = None,
               error: str | None = None) -> None:
    """Record how a run ended (``done`` or ``failed``) with its counts and error."""
    run = session.get(JobRun, run_id)
    run.status = RunStatus(status)
    run.ended = utcnow()
    if counts is not None or run.counts is None:
        run.counts = counts or {}
    run.error = None if error is None else error[:ERROR_CHARS]


def record_progress(session: Session, run_id: int, done: int, total: int) -> None:
    """How far a running run has come."""
    run = session.get(JobRun, run_id)
    run.counts = dict(run.counts or {}, done=done, total=total)
