"""Schema migrations: a database of the first release is upgraded in place."""
import shutil
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, select, text

from storage.database import HEAD_REVISION, open_database, schema_version
from storage.schema import SCHEMA_VERSION, ApiKey, Embedding, Image, JobRun, PairScore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema1.db"
"""Made by release 0.1 (commit 6d2acc8): a tiny model, 16 photos embedded, one
evaluation run with 24 pair scores (3 job runs)."""

TABLES = (Image, Embedding, JobRun, PairScore)


def counts(sessions) -> dict:
    with sessions() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


def test_release_one_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "verifier.db"
    shutil.copy(FIXTURE, path)
    raw = sqlalchemy.create_engine(f"sqlite:///{path}")
    with raw.connect() as conn:
        before = {t.__tablename__: conn.execute(text(f"select count(*) from {t.__tablename__}")).scalar()
                  for t in TABLES}
        runs = conn.execute(text("select id, kind, status from job_runs order by id")).all()
        vectors = conn.execute(text("select id, vector from embeddings order by id")).all()
        assert conn.execute(text("select value from meta")).scalar() == "1"
    raw.dispose()
    assert before == {"images": 16, "embeddings": 16, "job_runs": 3, "pair_scores": 24}
    sessions = open_database(f"sqlite:///{path}")
    assert schema_version(sessions) == SCHEMA_VERSION == 9
    assert counts(sessions) == before
    assert_runs_renamed_and_numbered(sessions, runs)
    with sessions() as s:
        assert s.execute(select(Embedding.id, Embedding.vector).order_by(Embedding.id)).all() == vectors
        assert s.scalar(text("select version_num from alembic_version")) == HEAD_REVISION
        assert s.scalar(select(func.count(ApiKey.id))) == 0  # the new table exists
        assert s.scalar(select(func.count(Image.source))) == 0  # and the new column
    assert_ids_never_reused(sessions)
    assert_rows_are_faces(sessions)
    sessions.kw["bind"].dispose()
    after = dict(before, embeddings=before["embeddings"] - 1)
    assert counts(open_database(f"sqlite:///{path}")) == after  # reopening changes nothing


def assert_runs_renamed_and_numbered(sessions, before) -> None:
    """Schema 7: a finished run is ``done`` whatever its kind (``ok`` was the word of
    embed and evaluate runs), and each run has a number among the runs of its kind,
    in the order they were started; a new run takes the next number of its kind."""
    from storage.runs import start_run
    from storage.schema import JobRun, RunKind, RunStatus

    assert {status for _, _, status in before} == {"ok"}
    with sessions.begin() as s:
        after = s.execute(select(JobRun.id, JobRun.kind, JobRun.status, JobRun.number).order_by(JobRun.id)).all()
        assert [(i, k) for i, k, _, _ in after] == [(i, k) for i, k, _ in before]
        assert all(status is RunStatus.DONE for _, _, status, _ in after)
        kinds = [k for _, k, _, _ in after]
        assert [n for _, _, _, n in after] == [kinds[:i + 1].count(k) for i, k in enumerate(kinds)]
        new = start_run(s, RunKind.EVALUATE, {})
        assert new.number == kinds.count(RunKind.EVALUATE) + 1
        cluster = start_run(s, RunKind.CLUSTER, {})
        assert cluster.number == kinds.count(RunKind.CLUSTER) + 1
        s.delete(new)
        s.delete(cluster)


def assert_ids_never_reused(sessions) -> None:
    """The largest embedding deleted, a new one gets another id (SQLite without
    AUTOINCREMENT handed the deleted id out again)."""
    with sessions.begin() as s:
        top = s.scalar(select(func.max(Embedding.id)))
        image_id, model_id = s.execute(select(Embedding.image_id, Embedding.model_id)
                                       .where(Embedding.id == top)).one()
        s.execute(sqlalchemy.delete(Embedding).where(Embedding.id == top))
    with sessions.begin() as s:
        row = Embedding(image_id=image_id, model_id=model_id, vector=bytes(8))
        s.add(row)
        s.flush()
        assert row.id > top
        s.delete(row)


def assert_rows_are_faces(sessions) -> None:
    """Schema 8: every existing row is the largest face of its photo (``face`` 0, no
    vector touched), a second face of the same photo is a row of its own, and the same
    face twice is refused."""
    from sqlalchemy.exc import IntegrityError

    with sessions() as s:
        rows = s.execute(select(Image.face, Image.landmarks)).all()
        assert rows and {face for face, _ in rows} == {0} and {m for _, m in rows} == {None}
        first = s.scalars(select(Image).order_by(Image.id)).first()
        path, sha, identity = first.path, first.sha256, first.identity_id
    with sessions.begin() as s:
        s.add(Image(path=path, sha256=sha, identity_id=identity, face=1, landmarks=[[1.0, 2.0]] * 5))
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(Image(path=path, sha256=sha, identity_id=identity, face=1))
    with sessions.begin() as s:
        s.execute(sqlalchemy.delete(Image).where(Image.path == path, Image.face == 1))


def test_schema_two_database_is_upgraded_in_place(tmp_path):
    from alembic import command
    from alembic.config import Config

    from storage.database import MIGRATIONS

    path = tmp_path / "verifier.db"
    shutil.copy(FIXTURE, path)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # a workspace of schema 2, as the last release left it
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.stamp(config, "0001")
        command.upgrade(config, "0002")
        vectors = conn.execute(text("select id, vector from embeddings order by id")).all()
    engine.dispose()
    sessions = open_database(f"sqlite:///{path}")
    assert schema_version(sessions) == SCHEMA_VERSION
    with sessions() as s:
        assert s.execute(select(Embedding.id, Embedding.vector).order_by(Embedding.id)).all() == vectors
        assert s.scalar(text("select count(*) from pair_scores")) == 24  # nothing cascaded
    assert_ids_never_reused(sessions)
    sessions.kw["bind"].dispose()


def test_postgres_schema_one_is_upgraded(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the SQLite case is the release fixture above")
    from alembic import command
    from alembic.config import Config

    from storage.database import MIGRATIONS

    engine = sqlalchemy.create_engine(db_url)
    with engine.begin() as conn:  # the first release's schema, as its migration creates it
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("drop table alembic_version"))  # release 1 had no Alembic
        conn.execute(text("insert into identities (id, name) values (1, 'ana')"))
        conn.execute(text("insert into models (id, name, backbone, config, artifact, created) "
                          "values (1, 'm', 'tiny', '{}', '/x', now())"))
        for i in range(1, 4):
            conn.execute(text("insert into images (id, path, sha256, identity_id, status, updated) "
                              f"values ({i}, '/g/{i}.png', '{i:064x}', 1, 'ok', now())"))
            conn.execute(text("insert into embeddings (id, image_id, model_id, vector, created) "
                              f"values ({i}, {i}, 1, :v, now())"), {"v": bytes(8)})
    engine.dispose()
    sessions = open_database(db_url)
    assert schema_version(sessions) == SCHEMA_VERSION
    assert counts(sessions) == {"images": 3, "embeddings": 3, "job_runs": 0, "pair_scores": 0}
    assert_ids_never_reused(sessions)  # the sequences start after the rows inserted by id
    assert_rows_are_faces(sessions)
    sessions.kw["bind"].dispose()


def test_head_revision_is_the_last_script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_upgraded_database_has_every_table_and_column_of_the_schema(tmp_path):
    """A release-one database upgraded by the scripts holds what a new database
    gets from the models: no table, column or index missing or extra."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.schema import Base

    path = tmp_path / "verifier.db"
    shutil.copy(FIXTURE, path)
    sessions = open_database(f"sqlite:///{path}")
    with sessions.kw["bind"].connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    structural = [d for d in diff if isinstance(d, tuple) and d[0] in
                  ("add_table", "remove_table", "add_column", "remove_column")]
    assert structural == []
