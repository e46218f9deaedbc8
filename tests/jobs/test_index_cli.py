"""`verifier index build` (streamed, IVF-PQ) and `verifier index info`."""
import json

import numpy as np
from click.testing import CliRunner

from jobs.cli import main
from jobs.embed import sync_index
from storage import gallery, models
from storage.database import open_database
from storage.follower import Follower
from storage.schema import Embedding, Image
from storage.workspace import Workspace


def fill(home, n=3000, d=8, seed=0):
    ws = Workspace.open(home)
    sessions = open_database(ws.database_url)
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    with sessions.begin() as s:
        model_id = models.ensure_model(s, "tiny", {"backbone": "tiny"}, home / "models" / "tiny").id
        ident = gallery.identity_id(s, "crowd")
        images = [{"path": f"/g/crowd/{i}.png", "sha256": f"{i:064x}", "identity_id": ident,
                   "status": "ok"} for i in range(n)]
        s.execute(Image.__table__.insert(), images)
        ids = [r[0] for r in s.execute(Image.__table__.select().with_only_columns(Image.id)
                                        .order_by(Image.id)).all()]
        s.execute(Embedding.__table__.insert(), [
            {"image_id": i, "model_id": model_id, "vector": gallery.vector_to_bytes(v),
             "created": __import__("datetime").datetime.now()} for i, v in zip(ids, vectors)])
    sync_index(ws, sessions, "tiny", model_id)  # a Flat index, as embed leaves it
    return ws, sessions, model_id


def test_streamed_ivf_pq_build_finds_every_vector_after_re_ranking(home_with_model):
    ws, sessions, model_id = fill(home_with_model)

    def follow():
        follower = Follower(sessions, ws.index_path("tiny"), model="tiny", model_id=model_id, dimension=8)
        caught = follower.load()
        return follower.index, caught

    with sessions() as s:
        db_ids = gallery.model_ids(s, model_id)
        vectors = gallery.vectors_of(s, db_ids)
    old, _ = follow()
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "index", "build", "--factory",
                                  "IVF32,PQ4", "--train-sample", "2000", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["factory"] == "IVF32,PQ4" and report["count"] == 3000 and report["trained_on"] == 2000
    assert report["behind"] == report["ahead"] == 0
    # a reader that loaded the old index before the swap keeps answering from it
    _, found, _ = old.search(vectors[:5], 1)
    assert found[:, 0].tolist() == db_ids[:5].tolist() and old.factory == "Flat"
    caught = (follower := Follower(sessions, ws.index_path("tiny"), model="tiny", model_id=model_id,
                                   dimension=8)).load()
    new = follower.index
    assert new.factory == "IVF32,PQ4" and not caught.changed and not new.exact
    distances, found, _ = new.search(vectors, 1)
    assert found[:, 0].tolist() == db_ids.tolist()  # exact top-1 for every stored vector
    assert np.allclose(distances[:, 0], 0.0, atol=1e-6)  # re-ranked by the stored vectors
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "index", "info"])
    assert r.exit_code == 0 and "IVF32,PQ4, 3000 vectors" in r.output
    assert "the index holds exactly these" in r.output


def test_build_refuses_a_sample_too_small_and_keeps_the_old_index(home_with_model):
    ws, sessions, _ = fill(home_with_model, n=300)
    before = ws.index_path("tiny").read_bytes()
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "index", "build", "--factory",
                                  "IVF1024,Flat"])
    assert r.exit_code == 1 and "at least 1024" in r.output
    assert ws.index_path("tiny").read_bytes() == before
