"""`verifier gallery check` and ``GET /v1/look-alikes`` over a gallery whose vectors
are written directly: two people planted as look-alikes, one apart; on SQLite and
PostgreSQL."""
from __future__ import annotations

import datetime
import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from jobs.api import Settings, create_app  # noqa: E402
from jobs.cli import main  # noqa: E402
from storage import gallery, models  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.keys import create_key  # noqa: E402
from storage.schema import Embedding, Image  # noqa: E402
from storage.workspace import Workspace  # noqa: E402

PEOPLE = {"Ann": [[0.0, 0], [0.2, 0]], "Anne": [[0.25, 0], [0.5, 0]], "Bob": [[10.0, 0], [10.2, 0]]}


def stored(home, db_url, threshold: float | None = 0.1):
    """The ``tiny`` model's gallery holding exactly :data:`PEOPLE`'s vectors."""
    sessions = open_database(db_url)
    with sessions.begin() as s:
        model = models.ensure_model(s, "tiny", {"backbone": "tiny"}, home / "models" / "tiny")
        model.threshold = threshold
        for name, vectors in PEOPLE.items():
            ident = gallery.identity_id(s, name)
            for n, vector in enumerate(vectors):
                image = Image(path=f"/g/{name}/{n}.png", sha256=f"{name}{n}".ljust(64, "0"),
                              identity_id=ident)
                s.add(image)
                s.flush()
                s.add(Embedding(image_id=image.id, model_id=model.id, created=datetime.datetime.now(),
                                vector=gallery.vector_to_bytes(np.array(vector, np.float32))))
    return sessions


def test_the_cli_lists_the_look_alikes_with_their_bridging_photos(home_with_model, db_url):
    stored(home_with_model, db_url)
    base = ["--home", str(home_with_model), "--db-url", db_url, "gallery", "check", "--model", "tiny"]
    r = CliRunner().invoke(main, base)
    assert r.exit_code == 0, r.output
    assert "3 people, 6 photos; 1 pair of people to check (a photo of each within 0.105" in r.output
    assert "Ann ~ Anne: closest photos 0.050 apart" in r.output and "Bob" not in r.output
    assert "/g/Ann/1.png ~ /g/Anne/0.png: 0.050" in r.output
    doc = json.loads(CliRunner().invoke(main, base + ["--json"]).output)
    assert [(p["first"], p["second"]) for p in doc["pairs"]] == [("Ann", "Anne")]
    assert doc["pairs"][0]["bridges"][0]["path_a"] == "/g/Ann/1.png" and doc["threshold"] == 0.1


def test_a_gallery_of_one_person_or_none_has_no_look_alikes(home_with_model, db_url, monkeypatch):
    monkeypatch.setitem(PEOPLE, "Ann", [[0.0, 0]])
    for name in ("Anne", "Bob"):
        monkeypatch.delitem(PEOPLE, name)
    stored(home_with_model, db_url)
    base = ["--home", str(home_with_model), "--db-url", db_url, "gallery", "check", "--model", "tiny"]
    r = CliRunner().invoke(main, base)
    assert r.exit_code == 0 and "1 person, 1 photo; no look-alikes" in r.output, r.output


def test_a_model_without_a_threshold_is_told_what_to_run(home_with_model, db_url):
    stored(home_with_model, db_url, threshold=None)
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "--db-url", db_url, "gallery", "check",
                                  "--model", "tiny"])
    assert r.exit_code == 1 and "no calibrated threshold yet" in r.output and "Traceback" not in r.output


def test_the_service_answers_with_photo_ids_only(home_with_model, db_url):
    sessions = stored(home_with_model, db_url)
    with sessions.begin() as s:
        key = create_key(s, "r", "read")
        ids = {img.path: img.id for img in s.query(Image)}
    app = create_app(Workspace.open(home_with_model), sessions, Settings(model="tiny"))
    with TestClient(app) as client:
        assert client.get("/v1/look-alikes").status_code == 401
        r = client.get("/v1/look-alikes", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["people"], body["photos"]) == (3, 6)
    (pair,) = body["pairs"]
    assert (pair["first"], pair["second"]) == ("Ann", "Anne")
    assert pair["bridges"][0] == {"photo_a": ids["/g/Ann/1.png"], "photo_b": ids["/g/Anne/0.png"],
                                  "distance": pytest.approx(0.05, abs=1e-4)}
    assert "/g/" not in r.text  # no server path leaves the service
    sessions.kw["bind"].dispose()


def test_a_group_near_a_person_it_is_not_suggested_as_is_listed(home_with_model, db_url):
    """An unnamed group suggested as Ann whose faces come as near Anne is listed
    against Anne (not against Ann); a group suggested as Bob, near Bob only, is not;
    a named group is not either."""
    from storage import clusters

    sessions = stored(home_with_model, db_url)
    with sessions.begin() as s:
        model_id = models.get_model(s, "tiny").id
        run = clusters.start(s, model_id, {"threshold": 0.1})
        faces = clusters.store_faces(s, model_id, [
            clusters.StoredFace(f"face{n}".ljust(64, "0"), 0, 1, None, None, np.array(v, np.float32))
            for n, v in enumerate([[0.3, 0], [0.32, 0], [10.1, 0], [10.12, 0], [0.28, 0], [0.3, 0.01]])])
        ids = [faces[f"face{n}".ljust(64, "0")][0].id for n in range(6)]
        clusters.finish(s, run, [clusters.GroupRow(0, 2, "Ann", 0.1), clusters.GroupRow(1, 2, "Bob", 0.1),
                                 clusters.GroupRow(2, 2, None, None)],
                        [clusters.MemberRow(g, i, f"/u/{n}.png", f"u{n}.png", g)
                         for n, (i, g) in enumerate(zip(ids, [0, 0, 1, 1, 2, 2]))], {})
        clusters.mark_named(s, run, 2, "Ann")
    base = ["--home", str(home_with_model), "--db-url", db_url, "gallery", "check", "--model", "tiny"]
    doc = json.loads(CliRunner().invoke(main, base + ["--json"]).output)
    assert [(g["cluster"], g["person"], g["suggestion"]) for g in doc["groups"]] == [(0, "Anne", "Ann")]
    assert doc["groups"][0]["photo"] == "u0.png" and abs(doc["groups"][0]["distance"] - 0.05) < 1e-4
    out = CliRunner().invoke(main, base).output
    assert "group 0 (2 faces, probably Ann) ~ Anne: u0.png 0.050 from photo" in out
    with sessions.begin() as s:
        key = create_key(s, "r", "read")
    with TestClient(create_app(Workspace.open(home_with_model), sessions, Settings(model="tiny"))) as client:
        body = client.get("/v1/look-alikes", headers={"Authorization": f"Bearer {key}"}).json()
    assert [(g["run"], g["cluster"], g["person"], g["face"], g["photo"]) for g in body["groups"]] == \
        [(run, 0, "Anne", 0, "u0.png")]
    sessions.kw["bind"].dispose()
