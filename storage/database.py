"""Engines and sessions: tables are created on first use, older schemas upgraded in
place (Alembic), the schema version recorded."""
from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, create_engine, event, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import DatabaseError
from .schema import SCHEMA_VERSION, Meta

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0009"
"""The Alembic revision of :data:`SCHEMA_VERSION` (tested against the scripts)."""


LOCK_WAIT_S = 5.0
"""How long one statement waits for a lock another connection holds (SQLite's
``busy_timeout``, PostgreSQL's ``lock_timeout``) before it fails; a gallery write
retries until :data:`BUSY_WAIT_S`."""
BUSY_WAIT_S = 15.0
"""How long a gallery write waits in all for the database's write lock before it
gives up with :class:`DatabaseBusy` (the service answers 503 ``busy``)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT_S * 1000)}")
    cursor.close()


def _connect_args(url: str) -> dict:
    """PostgreSQL: a statement that waits for a lock longer than :data:`LOCK_WAIT_S`
    fails (a held table lock cannot stall every request behind it)."""
    if url.startswith(("postgresql", "postgres")):
        return {"options": f"-c lock_timeout={int(LOCK_WAIT_S * 1000)}"}
    return {}


def open_database(url: str) -> sessionmaker[Session]:
    """Connect to ``url``, create the tables of a new database or upgrade an older
    one in place (Alembic migrations), and check the schema version.

    Raises :class:`DatabaseError` when the server cannot be reached or the schema
    is newer than this program.
    """
    try:
        engine = create_engine(url, future=True, connect_args=_connect_args(url))
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(f"cannot use database URL {url!r}: {exc}. For PostgreSQL install "
                            "the driver: pip install 'siamese-verifier[postgres]'") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            sqlite = engine.dialect.name == "sqlite"
            if sqlite:  # a table rebuild must not cascade; only outside a transaction
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                _migrate(conn, where)
                conn.commit()
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {where}: {str(exc).splitlines()[0]}") from None
    return sessionmaker(engine, expire_on_commit=False)


def _migrate(conn: Connection, where: str) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`. A database of the first release
    (no ``alembic_version`` table) is taken to be at revision ``0001``. Alembic is
    imported only when there is something to do (importing it slows every command's start)."""
    tables = set(inspect(conn).get_table_names())
    if "meta" in tables:
        found = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
        if found is not None and int(found) > SCHEMA_VERSION:
            raise DatabaseError(f"the database at {where} has schema version {found}, newer than "
                                f"this program's {SCHEMA_VERSION}; upgrade siamese-verifier")
    if "alembic_version" in tables and _revision(conn) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    if "meta" in tables and "alembic_version" not in tables:
        command.stamp(config, "0001")
    current = _revision(conn) if "alembic_version" in tables or "meta" in tables else None
    if current != HEAD_REVISION:
        if current is not None:
            log.warning("upgrading the database at %s from revision %s to %s", where, current,
                        HEAD_REVISION)
        command.upgrade(config, "head")


def _revision(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def schema_version(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(Meta.value).where(Meta.key == "schema_version")))

