"""The HTTP service, in process (every route, auth, limits, bad input) and as a real
uvicorn process (SIGKILL, restart, live catch-up)."""
import io
import json
import logging
import signal
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from sqlalchemy import func, select

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from jobs.api import Settings, create_app  # noqa: E402
from jobs.cli import main  # noqa: E402
from jobs.embed import embed_gallery  # noqa: E402
from jobs.evaluate import evaluate  # noqa: E402
from storage import gallery  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.keys import create_key, revoke_key  # noqa: E402
from storage.models import get_model  # noqa: E402
from storage.schema import Embedding, Image  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.conftest import tiny_gallery  # noqa: E402
from tests.photos import png  # noqa: E402
from tests.servers import Server  # noqa: E402
from verifier.synthetic import pattern_image, write_identity_set  # noqa: E402


@pytest.fixture
def served(home_with_model, tmp_path, db_url):
    # the tiny one-epoch model's train-time threshold (at FAR 1e-4) accepts almost
    # nothing; these tests want the best-accuracy one, which evaluate sets for a
    # model saved without a threshold
    config_path = home_with_model / "models" / "tiny" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("threshold"), config.pop("threshold_rule")
    config_path.write_text(json.dumps(config))
    ws = Workspace.open(home_with_model)
    sessions = open_database(db_url)
    data = write_identity_set(tmp_path / "gallery", identities=4, per_identity=3, size=32, seed=5)
    embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    evaluate(ws, sessions, model="tiny", split="validation")  # calibrates, stores a run
    keys = {}
    with sessions.begin() as s:
        for scope in ("read", "write", "admin"):
            keys[scope] = create_key(s, scope, scope)
        keys["revoked"] = create_key(s, "old", "admin")
        revoke_key(s, "old")
    # many wrong keys on purpose: no 429 here (test_service_hardening.py tests it)
    app = create_app(ws, sessions, Settings(model="tiny", refresh_interval=0.2, auth_failures=10 ** 6))
    with TestClient(app) as client:
        yield client, keys, data, ws, sessions
    sessions.kw["bind"].dispose()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def state(ws, sessions) -> tuple:
    """What a refused request must not change."""
    with sessions() as s:
        counts = (s.scalar(select(func.count(Image.id))), s.scalar(select(func.count(Embedding.id))))
    files = sorted(p.name for p in ws.enrolled_dir.rglob("*")) if ws.enrolled_dir.exists() else []
    return counts, files


def test_every_route(served):
    client, keys, data, ws, sessions = served
    w, a = auth(keys["write"]), auth(keys["admin"])
    probe = (data / "person_02" / "img_01.png").read_bytes()
    r = client.post("/v1/search", headers=w, files={"photo": ("p.png", probe)}, data={"k": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny" and body["face"] == "whole" and len(body["matches"]) == 3
    assert body["matches"][0]["identity"] == "person_02" and body["matches"][0]["distance"] < 1e-3
    assert not body["unknown"] and body["threshold"] is not None
    # enroll a new person, find them, remove them
    new = png(7, 3)
    r = client.post("/v1/identities/Zoë Ñ/photos", headers=w,
                    files=[("photos", ("a.png", new)), ("photos", ("b.png", png(7, 4)))])
    assert r.status_code == 201, r.text
    enrolled = r.json()["photos"]
    assert len(enrolled) == 2 and all(p["created"] for p in enrolled)
    r = client.post("/v1/identities/Zoë Ñ/photos", headers=w, files=[("photos", ("a.png", new))])
    assert r.status_code == 200 and not r.json()["photos"][0]["created"]  # idempotent
    top = client.post("/v1/search", headers=w, files={"photo": ("n.png", new)}).json()["matches"][0]
    assert top["identity"] == "Zoë Ñ" and top["photo_id"] == enrolled[0]["photo_id"]
    r = client.get("/v1/identities/Zoë Ñ", headers=w)
    assert r.status_code == 200 and [p["source"] for p in r.json()["photos"]] == ["a.png", "b.png"]
    r = client.get(f"/v1/photos/{top['photo_id']}/face", headers=w)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(r.content)).size == (32, 32)
    # verify: two uploads, an upload and a gallery id, two gallery ids
    r = client.post("/v1/verify", headers=w, files={"photo_a": ("a", new), "photo_b": ("b", new)})
    assert r.status_code == 200 and r.json()["same"] and r.json()["distance"] < 1e-3
    r = client.post("/v1/verify", headers=w, files={"photo_b": ("b", probe)},
                    data={"photo_a_id": str(top["photo_id"])})
    assert r.status_code == 200 and r.json()["photo_a"] == f"photo {top['photo_id']}"
    r = client.post("/v1/verify", headers=w, data={"photo_a_id": str(enrolled[0]["photo_id"]),
                                                   "photo_b_id": str(enrolled[1]["photo_id"])})
    assert r.status_code == 200 and set(r.json()) >= {"distance", "threshold", "same"}
    r = client.post("/v1/verify", headers=w, files={"photo_a": ("a", new)})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    # identities, paged
    r = client.get("/v1/identities", headers=w, params={"limit": 2, "offset": 1})
    page = r.json()
    assert page["total"] == 5 and [i["name"] for i in page["items"]] == ["person_00", "person_01"]
    # removal
    r = client.delete(f"/v1/photos/{enrolled[0]['photo_id']}", headers=w)
    assert r.status_code == 200 and r.json() == {"removed_photos": 1}
    top = client.post("/v1/search", headers=w, files={"photo": ("n.png", new)}).json()["matches"][0]
    assert top["photo_id"] != enrolled[0]["photo_id"]
    assert client.delete("/v1/identities/Zoë Ñ", headers=w).json() == {"removed_photos": 1}
    names = [m["identity"] for m in client.post("/v1/search", headers=w, data={"k": "10"},
                                                files={"photo": ("n", new)}).json()["matches"]]
    assert "Zoë Ñ" not in names
    assert client.delete("/v1/identities/Zoë Ñ", headers=w).json()["code"] == "identity_not_found"
    assert client.delete(f"/v1/photos/{enrolled[0]['photo_id']}", headers=w).status_code == 404
    # models, evaluations, reports
    models = client.get("/v1/models", headers=w).json()
    assert models[0]["name"] == "tiny" and models[0]["serving"]
    runs = client.get("/v1/evaluations", headers=w).json()
    assert runs[0]["split"] == "validation" and runs[0]["roc_auc"] is not None
    run = runs[0]["run"]
    for fmt, marker in (("html", b"<html"), ("csv", b"photo_a"), ("json", b'"metrics"')):
        r = client.get(f"/v1/evaluations/{run}/report", headers=a, params={"format": fmt})
        assert r.status_code == 200 and marker in r.content[:20000], fmt
        if fmt in ("csv", "json"):  # photos relative to their folder: no path of the server's
            assert str(ws.root.parent).encode() not in r.content, fmt
    assert client.get("/v1/evaluations/9999/report", headers=a).status_code == 404
    # health, readiness, metrics, the schema
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert 'verifier_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert "verifier_gallery_vectors" in metrics and "verifier_request_seconds_bucket" in metrics
    schema = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/verify", "/v1/identities/{name}/photos"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # no page that needs a CDN


ROUTES = [("post", "/v1/search", "read"), ("post", "/v1/verify", "read"),
          ("get", "/v1/identities", "read"), ("get", "/v1/identities/person_00", "read"),
          ("get", "/v1/models", "read"), ("get", "/v1/evaluations", "read"),
          ("get", "/v1/photos/1/face", "read"),
          ("post", "/v1/identities/person_00/photos", "write"), ("delete", "/v1/photos/1", "write"),
          ("delete", "/v1/identities/nobody", "write"), ("get", "/v1/evaluations/1/report", "admin")]


def test_keys_and_scopes(served, caplog):
    client, keys, data, ws, sessions = served
    caplog.set_level(logging.DEBUG)
    for method, path, needed in ROUTES:
        for headers in ({}, auth("sv_wrong"), auth(keys["revoked"]), {"Authorization": "Basic x"}):
            r = client.request(method, path, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "unauthorized", (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
        for scope in ("read", "write", "admin"):
            r = client.request(method, path, headers=auth(keys[scope]))
            order = ["read", "write", "admin"]
            if order.index(scope) < order.index(needed):
                assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, scope)
            else:
                assert r.status_code not in (401, 403), (path, scope, r.text)
    r = client.post("/v1/search", headers=auth(keys["read"]))  # no photo
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert not any(k in text for k in keys.values())


def test_no_auth_is_refused_off_loopback(home_with_model):
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "serve", "--no-auth",
                                  "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "loopback" in r.output


def test_bad_input_changes_nothing(served):
    client, keys, data, ws, sessions = served
    w = auth(keys["write"])
    client.post("/v1/identities/keep/photos", headers=w, files=[("photos", ("k.png", png(9, 9)))])
    before = state(ws, sessions)
    big = io.BytesIO()
    PILImage.new("L", (8000, 8000)).save(big, "PNG")  # 64 Mpx in a few hundred kB: a bomb
    buf = io.BytesIO()
    PILImage.fromarray(pattern_image(1, np.random.default_rng(0), 64)).save(buf, "JPEG")
    cases = [
        (b"", 422, "empty"),
        (b"%PDF-1.4 not an image", 415, "not_an_image"),
        (buf.getvalue()[: len(buf.getvalue()) // 2], 422, "truncated"),
        (big.getvalue(), 413, "too_large"),
    ]
    for payload, status, code in cases:
        for path in ("/v1/search", "/v1/identities/newbie/photos"):
            field = "photo" if path.endswith("search") else "photos"
            r = client.post(path, headers=w, files={field: ("x.jpg", payload)})
            assert (r.status_code, r.json()["code"]) == (status, code), (path, code, r.text)
            assert r.json()["message"]
    # one bad photo among good ones refuses the whole enrollment
    r = client.post("/v1/identities/newbie/photos", headers=w,
                    files=[("photos", ("ok.png", png(3, 1))), ("photos", ("bad.png", b"junk"))])
    assert r.status_code == 415
    for name in ("a\\b", " x", "tab%09here", "x" * 300):
        r = client.post(f"/v1/identities/{name}/photos", headers=w, files={"photos": ("a", png(3, 2))})
        assert r.status_code == 422 and r.json()["code"] == "invalid_name", name
    r = client.post("/v1/identities/..%2F..%2Fetc/photos", headers=w, files={"photos": ("a", png(3, 2))})
    assert r.status_code in (404, 422) and "code" in r.json()
    # a body over --max-upload: refused from its Content-Length, and while streaming
    r = client.post("/v1/search", headers={**w, "Content-Length": str(11 * 1024 * 1024)},
                    content=b"x" * 100)
    assert r.status_code == 413 and r.json()["code"] == "too_large"

    def chunks():
        for _ in range(12):
            yield b"\0" * (1024 * 1024)

    r = client.post("/v1/search", headers={**w, "Content-Type": "multipart/form-data; boundary=x"},
                    content=chunks())
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert state(ws, sessions) == before
    # awkward but valid photos are answered
    exif = PILImage.Exif()
    exif[0x0112] = 6
    for payload in (png(1, 1, mode="I;16"), png(1, 2, mode="CMYK", fmt="JPEG"),
                    png(1, 3, fmt="JPEG", exif=exif.tobytes())):
        r = client.post("/v1/search", headers=w, files={"photo": ("ok", payload)})
        assert r.status_code == 200, r.text


def test_overload_is_503_not_a_pile(home_with_model, tmp_path):
    ws, sessions = tiny_gallery(home_with_model, tmp_path)
    with sessions.begin() as s:
        key = create_key(s, "k", "read")
    app = create_app(ws, sessions, Settings(model="tiny", workers=1, queue=1))
    with TestClient(app) as client:
        verifier = app.state.service.verifier
        slow = verifier.search

        def search(*args, **kwargs):
            time.sleep(0.5)
            return slow(*args, **kwargs)

        verifier.search = search
        codes, retry = [], []

        def call():
            r = client.post("/v1/search", headers=auth(key), files={"photo": ("p", png(0, 1))})
            codes.append(r.status_code)
            retry.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(set(codes)) == [200, 503] and codes.count(200) >= 2
    assert all(r == "1" for c, r in zip(codes, retry) if c == 503)


def test_live_catch_up_of_another_process(served, tmp_path):
    client, keys, data, ws, sessions = served
    w = auth(keys["read"])
    more = write_identity_set(tmp_path / "more", identities=2, per_identity=2, size=32, seed=11)
    (more / "person_01").rename(more / "latecomer")
    probe = (more / "latecomer" / "img_00.png").read_bytes()
    embed_gallery(ws, sessions, more, model="tiny", quiet=True)  # as `verifier embed` would
    deadline = time.time() + 10
    while time.time() < deadline:
        top = client.post("/v1/search", headers=w, files={"photo": ("p", probe)}).json()["matches"][0]
        if top["identity"] == "latecomer":
            break
        time.sleep(0.1)
    assert top["identity"] == "latecomer" and top["distance"] < 1e-3


# -- a real server process ---------------------------------------------------------------

def test_sigkill_then_restart_keeps_every_answered_enrollment(home_with_model, tmp_path):
    import httpx

    ws, sessions = tiny_gallery(home_with_model, tmp_path)
    with sessions.begin() as s:
        key = create_key(s, "w", "write")
    server = Server(home_with_model, ws.database_url, key=key, refresh=2.0, snapshot=3600)
    server.start()
    base = server.url
    answered: dict[str, bytes] = {}
    stop = threading.Event()

    def enroll_forever():
        n = 0
        with httpx.Client(base_url=base, headers=auth(key), timeout=10) as c:
            while not stop.is_set():
                photo = png(n % 6, 1000 + n)
                try:
                    r = c.post(f"/v1/identities/p{n}/photos", files={"photos": ("x.png", photo)})
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    answered[f"p{n}"] = photo
                n += 1

    thread = threading.Thread(target=enroll_forever)
    thread.start()
    deadline = time.time() + 60
    while len(answered) < 15 and time.time() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    thread.join(15)
    assert len(answered) >= 15
    server.start()
    try:
        for name, photo in answered.items():
            top = server.search(photo, k=1)[0]
            assert top["identity"] == name and top["distance"] < 1e-3, name
    finally:
        # graceful: in-flight requests end, the index is saved; uvicorn re-raises the
        # signal after its shutdown
        assert server.stop() in (0, -signal.SIGTERM)
    with sessions() as s:
        dupes = s.execute(select(Embedding.image_id).group_by(Embedding.image_id)
                          .having(func.count() > 1)).all()
        assert not dupes
        assert len(gallery.model_ids(s, get_model(s, "tiny").id)) >= 4 + len(answered)
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "doctor"])
    assert r.exit_code == 0 and "note:" not in r.output, r.output


def test_keys_cli(home_with_model):
    home = str(home_with_model)
    r = CliRunner().invoke(main, ["--home", home, "keys", "create", "kiosk", "--scope", "read"])
    assert r.exit_code == 0 and r.stdout.strip().startswith("sv_")
    secret = r.stdout.strip()
    r = CliRunner().invoke(main, ["--home", home, "keys", "list", "--json"])
    listed = json.loads(r.output)
    assert listed[0]["name"] == "kiosk" and secret not in r.output
    assert CliRunner().invoke(main, ["--home", home, "keys", "create", "kiosk", "--scope",
                                     "read"]).exit_code == 1
    assert CliRunner().invoke(main, ["--home", home, "keys", "revoke", "kiosk"]).exit_code == 0
    assert "revoked" in CliRunner().invoke(main, ["--home", home, "keys", "list"]).output
    assert CliRunner().invoke(main, ["--home", home, "keys", "revoke", "nobody"]).exit_code == 1


def test_rename_and_merge_over_http(served):
    client, keys, data, ws, sessions = served
    w, r = auth(keys["write"]), auth(keys["read"])
    probe = (data / "person_00" / "img_00.png").read_bytes()
    n0, n1 = (len(client.get(f"/v1/identities/person_0{i}", headers=r).json()["photos"]) for i in (0, 1))
    assert client.patch("/v1/identities/person_00", headers=r, json={"name": "x"}).status_code == 403
    got = client.patch("/v1/identities/person_00", headers=w, json={"name": "Zoe\u0308"})
    assert got.status_code == 200 and got.json() == {"name": "Zo\u00eb", "photos": n0}
    top = client.post("/v1/search", headers=r, files={"photo": ("p", probe)}).json()["matches"][0]
    assert top["identity"] == "Zo\u00eb"
    clash = client.patch("/v1/identities/Zo\u00eb", headers=w, json={"name": "person_01"})
    assert clash.status_code == 409 and clash.json()["code"] == "conflict"
    merged = client.patch("/v1/identities/Zoe\u0308", headers=w, json={"name": "person_01", "merge": True})
    assert merged.status_code == 200 and merged.json()["photos"] == n0 + n1
    missing = client.patch("/v1/identities/nobody", headers=w, json={"name": "y"})
    assert missing.status_code == 404 and missing.json()["code"] == "identity_not_found"
    bad = client.patch("/v1/identities/person_01", headers=w, json={"name": "a\u200bb"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_name"
