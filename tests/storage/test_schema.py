import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage import gallery, models, runs
from storage.database import open_database, schema_version
from storage.errors import DatabaseError
from storage.schema import SCHEMA_VERSION, Embedding, Image, JobRun, Meta, Model, RunStatus


def test_round_trip(db_url):
    sessions = open_database(db_url)
    assert schema_version(sessions) == SCHEMA_VERSION
    vec = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    with sessions.begin() as s:
        ident = gallery.identity_id(s, "Zoë")
        assert gallery.identity_id(s, "Zoë") == ident
        s.add(Image(path="/g/Zoë/1.png", sha256="a" * 64, identity_id=ident, width=10, height=20))
        model = models.ensure_model(s, "m1", {"backbone": "tiny", "image_size": 32}, "/x")
        run = runs.start_run(s, "embed", {"data": "/g"}, model.id)
        s.flush()
        image = s.scalar(select(Image))
        s.add(Embedding(image_id=image.id, model_id=model.id, vector=gallery.vector_to_bytes(vec)))
        runs.finish_run(s, run.id, "done", {"added": 1})
    with sessions() as s:
        ids, vectors = gallery.model_vectors(s, model.id)
        assert len(ids) == 1 and np.array_equal(vectors[0], vec)
        assert s.scalar(select(Model.config))["image_size"] == 32
        run = s.scalar(select(JobRun))
        assert run.status is RunStatus.DONE and run.number == 1 and run.counts == {"added": 1} and run.ended is not None
        photos = gallery.embedded_photos(s, model.id)
        assert photos[ids[0]].identity == "Zoë" and photos[ids[0]].path == "/g/Zoë/1.png"
        assert gallery.identity_counts(s) == [("Zoë", 1)]
        assert models.model_counts(s) == [("m1", "tiny", 1, None)]
    # one embedding per image and model
    with pytest.raises(IntegrityError):
        with sessions.begin() as s:
            s.add(Embedding(image_id=image.id, model_id=model.id, vector=b"\0" * 12))
    # reopening keeps everything
    sessions = open_database(db_url)
    with sessions() as s:
        assert len(gallery.model_ids(s, model.id)) == 1
    sessions.kw["bind"].dispose()


def test_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    sessions = open_database(url)
    with sessions.begin() as s:
        s.get(Meta, "schema_version").value = str(SCHEMA_VERSION + 1)
    with pytest.raises(DatabaseError, match="upgrade"):
        open_database(url)


def test_unreachable_database_is_a_clear_error():
    with pytest.raises(DatabaseError, match="cannot"):
        open_database("postgresql+psycopg2://nobody@127.0.0.1:1/none")
