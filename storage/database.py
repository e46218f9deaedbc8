"""Engines and sessions: tables are created on first use, the schema version recorded."""
from __future__ import annotations


from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import DatabaseError
from .schema import SCHEMA_VERSION, Base, Meta


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_database(url: str) -> sessionmaker[Session]:
    """Connect to ``url``, create missing tables, check the schema version.

    Raises :class:`DatabaseError` when the server cannot be reached or the schema
    is newer than this program.
    """
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(f"cannot use database URL {url!r}: {exc}. For PostgreSQL install "
                            "the driver: pip install 'siamese-verifier[postgres]'") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        Base.metadata.create_all(engine)
        factory = sessionmaker(engine, expire_on_commit=False)
        with factory.begin() as session:
            row = session.get(Meta, "schema_version")
            if row is None:
                session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row.value) > SCHEMA_VERSION:
                raise DatabaseError(f"the database at {engine.url.render_as_string(hide_password=True)} "
                                    f"has schema version {row.value}, newer than this program's "
                                    f"{SCHEMA_VERSION}; upgrade siamese-verifier")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {engine.url.render_as_string(hide_password=True)}: "
                            f"{str(exc).splitlines()[0]}") from None
    return factory


def schema_version(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(Meta.value).where(Meta.key == "schema_version")))

