"""The service's cluster runs (``/v1/clusters``) on SQLite and PostgreSQL: uploads
stored by content and grouped in the background, progress and groups, thumbnails,
naming through the gallery, folders only where the operator allowed them."""
import io
import threading
import time

import pytest
from PIL import Image as PILImage

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from jobs.api import Settings, create_app  # noqa: E402
from jobs.api.background import ClusterRunner  # noqa: E402
from jobs.cluster import load_run, start_run  # noqa: E402
from jobs.live import Verifier  # noqa: E402
from storage import models  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.keys import create_key  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.photos import png  # noqa: E402
from verifier.synthetic import write_identity_set  # noqa: E402


@pytest.fixture
def served(home_with_model, tmp_path, db_url):
    ws = Workspace.open(home_with_model)
    sessions = open_database(db_url)
    with sessions.begin() as s:
        keys = {scope: create_key(s, scope, scope) for scope in ("read", "write")}
    write_identity_set(tmp_path / "allowed" / "event", identities=2, per_identity=2, size=32)
    Verifier.open(ws, sessions, "tiny")  # the model's row, to set its threshold
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = 100.0  # every pair: one group
    app = create_app(ws, sessions, Settings(model="tiny", cluster_folders=(str(tmp_path / "allowed"),)))
    with TestClient(app) as client:
        yield client, keys, ws, sessions, tmp_path
    sessions.kw["bind"].dispose()


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def finished(client, key, run, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/clusters/{run}", headers=auth(key)).json()
        if body["status"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run} still running")


def test_uploads_are_grouped_shown_and_named(served):
    client, keys, ws, sessions, _ = served
    files = [("photos", (f"../../p{i}.png", png(i % 2, i), "image/png")) for i in range(5)]
    files.append(("photos", ("broken.png", b"not an image", "image/png")))
    r = client.post("/v1/clusters", files=files, headers=auth(keys["write"]))
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "running" and started["progress"]["total"] == 6
    body = finished(client, keys["read"], started["run"])
    assert body["status"] == "done" and body["progress"] == {"done": 6, "total": 6}, body.get("error")
    [group] = body["clusters"]
    assert group["size"] == 5 and sorted(group["photos"]) == [f"p{i}.png" for i in range(5)]
    assert list(body["skipped"]) == ["broken.png"] and "broken.png" in body["skipped"]["broken.png"]
    # uploads lie by content in the workspace, never at the client's name
    stored = sorted(p.name for p in ws.uploads_dir.rglob("*") if p.is_file())
    assert len(stored) == 6 and not any(name.startswith("p") for name in stored)
    listed = client.get("/v1/clusters", headers=auth(keys["read"])).json()["runs"]
    assert listed[0]["run"] == started["run"] and listed[0]["groups"] == 1

    thumb = client.get(f"/v1/clusters/{started['run']}/{group['cluster']}/faces/0", headers=auth(keys["read"]))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(thumb.content)).size == (96, 96)
    missing = client.get(f"/v1/clusters/{started['run']}/{group['cluster']}/faces/9", headers=auth(keys["read"]))
    assert missing.status_code == 404 and missing.json()["code"] == "cluster_not_found"

    url = f"/v1/clusters/{started['run']}/{group['cluster']}/name"
    assert client.post(url, json={"name": "ada"}, headers=auth(keys["read"])).status_code == 403
    named = client.post(url, json={"name": "ada"}, headers=auth(keys["write"]))
    assert named.status_code == 200, named.text
    assert named.json() | {"skipped": {}} == {"run": started["run"], "cluster": group["cluster"],
                                              "identity": "ada", "enrolled": 5, "already": 0,
                                              "skipped": {}}
    person = client.get("/v1/identities/ada", headers=auth(keys["read"])).json()
    assert len(person["photos"]) == 5
    taken = client.post(url, json={"name": "ada"}, headers=auth(keys["write"]))
    assert taken.status_code == 409 and taken.json()["code"] == "conflict"
    merged = client.post(url, json={"name": "ada", "merge": True}, headers=auth(keys["write"]))
    assert merged.status_code == 200 and merged.json()["already"] == 5
    # the new person is searchable at once
    found = client.post("/v1/search", files={"photo": ("q.png", png(0, 0), "image/png")},
                        headers=auth(keys["read"])).json()
    assert found["matches"][0]["identity"] == "ada"


def test_folders_only_where_allowed_and_shown_relative(served):
    client, keys, _, _, tmp_path = served
    refused = client.post("/v1/clusters", data={"folder": str(tmp_path)}, headers=auth(keys["write"]))
    assert refused.status_code == 403 and "--cluster-folder" in refused.json()["message"]
    escape = client.post("/v1/clusters", data={"folder": str(tmp_path / "allowed" / ".." / "..")},
                         headers=auth(keys["write"]))
    assert escape.status_code == 403
    r = client.post("/v1/clusters", data={"folder": str(tmp_path / "allowed" / "event")},
                    headers=auth(keys["write"]))
    assert r.status_code == 202, r.text
    body = finished(client, keys["read"], r.json()["run"])
    assert sorted(body["clusters"][0]["photos"]) == sorted(
        f"event/person_0{i}/img_0{j}.png" for i in range(2) for j in range(2))
    assert str(tmp_path) not in str(body)


def test_bad_requests_are_refused_before_any_run(served):
    client, keys, _, sessions, _ = served
    w = auth(keys["write"])
    assert client.post("/v1/clusters", headers=w).json()["code"] == "invalid_request"
    assert client.post("/v1/clusters", data={"threshold": "-1", "folder": "x"}, headers=w).status_code == 422
    assert client.get("/v1/clusters/77", headers=auth(keys["read"])).json()["code"] == "cluster_not_found"
    r = client.post("/v1/clusters/77/0/name", json={"name": "x"}, headers=w)
    assert r.status_code == 404 and r.json()["code"] == "cluster_not_found"
    assert client.post("/v1/clusters", files=[("photos", ("a.png", png(0, 0), "image/png"))]).status_code == 401


def test_a_cli_run_shows_file_names_only(served):
    from jobs.cluster import cluster_photos, photo_items

    client, keys, ws, sessions, tmp_path = served
    folder = write_identity_set(tmp_path / "cli", identities=1, per_identity=2, size=32)
    v = Verifier.open(ws, sessions, "tiny")
    run = cluster_photos(ws, sessions, photo_items([folder]), verifier=v)
    body = client.get(f"/v1/clusters/{run.run}", headers=auth(keys["read"])).json()
    assert sorted(body["clusters"][0]["photos"]) == ["img_00.png", "img_01.png"]
    assert str(tmp_path) not in str(body)


def test_runner_stops_between_batches_and_fails_the_waiting_runs(home_with_model, tmp_path):
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    v = Verifier.open(ws, sessions, "tiny")
    runner = ClusterRunner(sessions, waiting=1)
    gate = threading.Event()
    first = start_run(sessions, v, threshold=1.0)
    waiting = start_run(sessions, v, threshold=1.0)

    def blocked(stopping):
        gate.wait(5)
        from storage import clusters as store
        if stopping():
            with sessions.begin() as session:
                store.fail(session, first, "stopped")

    assert runner.submit(first, blocked) and runner.submit(waiting, lambda stopping: None) is True
    assert runner.submit(start_run(sessions, v, threshold=1.0), lambda stopping: None) is False
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    gate.set()
    stopper.join(10)
    assert load_run(sessions, waiting).status == "failed"
    assert "before this run started" in load_run(sessions, waiting).error
    assert load_run(sessions, first).status == "failed"


def test_a_refused_cluster_run_stores_nothing_and_a_dead_run_reads_failed_everywhere(served):
    import os

    from jobs.cluster import process_started, run_gone

    client, keys, ws, sessions, _ = served
    svc = client.app.state.service
    uploads = lambda: sorted(ws.uploads_dir.rglob("*")) if ws.uploads_dir.exists() else []  # noqa: E731
    before = uploads()
    held, svc.clusters._held = svc.clusters._held, svc.clusters.limit  # the runner is full
    try:
        r = client.post("/v1/clusters", headers=auth(keys["write"]),
                        files=[("photos", ("a.png", png(1, 71)))])
        assert r.status_code == 503 and r.json()["code"] == "busy"
    finally:
        svc.clusters._held = held
    assert uploads() == before  # refused before a byte was stored
    me = {"host": __import__("socket").gethostname(), "pid": os.getpid()}
    assert not run_gone(me | {"process_started": process_started(os.getpid())})
    if process_started(os.getpid()) is not None:  # the same pid, another process (a new container)
        assert run_gone(me | {"process_started": process_started(os.getpid()) - 1})


def test_a_run_whose_process_died_reads_failed_in_the_list_and_in_its_page(served):
    import os
    import socket
    import subprocess
    import sys

    from storage import clusters as store

    client, keys, ws, sessions, _ = served
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid whose process has exited
    with sessions() as s:
        model_id = models.get_model(s, "tiny").id
    with sessions.begin() as s:
        run = store.start(s, model_id, {"threshold": 1.0, "host": socket.gethostname(), "pid": int(dead),
                                        "process_started": 1}, 3)
    listed = {r["run"]: r["status"] for r in client.get("/v1/clusters", headers=auth(keys["read"])).json()["runs"]}
    shown = client.get(f"/v1/clusters/{run}", headers=auth(keys["read"])).json()
    assert listed[run] == "failed" and shown["status"] == "failed", (listed, shown["status"])
    assert str(dead) in shown["error"] and os.getpid() != int(dead)
