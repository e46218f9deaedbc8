"""The gallery change log: every write to the gallery tables appends what it changed
(an embedding added or removed, a photo's metadata updated) in the same transaction,
numbered in commit order. Followers (servers, index snapshots) apply the changes
after the last sequence number they applied; nothing depends on counts, largest ids
or timing.

Writers call :func:`note`; the rows are written by a ``before_commit`` hook, which
takes the one-row head with a row lock, so sequence numbers are handed out in the
order transactions commit (PostgreSQL; SQLite has one writer at a time anyway).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from ..schema import Change, ChangeHead, ChangeKind, utcnow

PENDING = "gallery_changes"
LOGGED = "gallery_logged"


class ChangeRow(NamedTuple):
    seq: int
    kind: ChangeKind
    model_id: int | None
    embedding_id: int | None
    image_id: int | None
    at: datetime


def note(session: Session, kind: ChangeKind, *, model_id: int | None = None,
         embedding_id: int | None = None, image_id: int | None = None) -> None:
    """Remember a change of this transaction; it is logged when the transaction commits."""
    session.info.setdefault(PENDING, []).append(
        {"kind": kind.value, "model_id": model_id, "embedding_id": embedding_id,
         "image_id": image_id})


_HEAD = ChangeHead.__table__
_BUMP = (_HEAD.update().where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + bindparam("n"))
         .returning(_HEAD.c.seq))
_LOG = Change.__table__.insert()
_TAKE_SQLITE = _HEAD.update().where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq)
_TAKE = select(_HEAD.c.seq).where(_HEAD.c.id == 1).with_for_update()


def lock(session: Session) -> None:
    """Take the gallery's write lock for the rest of this transaction, before it
    reads what it will decide on: every gallery write holds it from its first read
    to its commit, so a rename sees every photo of the person at commit time, an
    enrollment the name its person has then, and a removal the rows that share a
    file. PostgreSQL: the change-log head's row lock; SQLite: the database's write
    lock (a write as the transaction's first statement)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_TAKE_SQLITE)
    else:
        session.execute(_TAKE)


@event.listens_for(Session, "before_commit")
def _write_log(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    session.flush()
    # the row lock on the head is held until this transaction ends: a concurrent
    # writer waits here, then numbers its changes after ours (Core statements: this
    # runs in every gallery write)
    conn = session.connection()
    first = conn.execute(_BUMP, {"n": len(pending)}).scalar_one() - len(pending) + 1
    now = utcnow()
    conn.execute(_LOG, [dict(row, seq=first + n, at=now) for n, row in enumerate(pending)])
    session.info[LOGGED] = (first, first + len(pending) - 1)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


def logged(session: Session) -> tuple[int, int] | None:
    """``(first, last)`` sequence numbers the last commit of ``session`` logged."""
    return session.info.pop(LOGGED, None)


def head(session: Session) -> int:
    """The last sequence number handed out (0 for a new database)."""
    return int(session.scalar(select(ChangeHead.seq).where(ChangeHead.id == 1)) or 0)


def after(session: Session, seq: int, limit: int = 10_000) -> list[ChangeRow]:
    """The changes after ``seq``, oldest first, at most ``limit``."""
    rows = session.execute(select(Change.seq, Change.kind, Change.model_id, Change.embedding_id,
                                  Change.image_id, Change.at)
                           .where(Change.seq > seq).order_by(Change.seq).limit(limit)).all()
    return [ChangeRow(*row) for row in rows]


class Lag(NamedTuple):
    """How far a follower at ``seq`` is behind the log."""

    changes: int
    seconds: float


def lag(session: Session, seq: int) -> Lag:
    """Changes logged after ``seq`` and the age of the oldest of them."""
    count, oldest = session.execute(select(func.count(Change.seq), func.min(Change.at))
                                    .where(Change.seq > seq)).one()
    if not count:
        return Lag(0, 0.0)
    if oldest.tzinfo is None:  # SQLite returns naive UTC
        oldest = oldest.replace(tzinfo=timezone.utc)
    return Lag(int(count), max(0.0, (utcnow() - oldest).total_seconds()))
