"""What the service decides before a body is read, and what it refuses: real server
processes where the behaviour lives in uvicorn or the ASGI guard, in process for the
rest."""
from __future__ import annotations

import io
import socket
import time

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from jobs.api import Settings, create_app  # noqa: E402
from storage import gallery  # noqa: E402
from storage import models  # noqa: E402
from storage.keys import create_key  # noqa: E402
from tests.conftest import tiny_gallery  # noqa: E402
from tests.photos import png  # noqa: E402
from tests.servers import Server  # noqa: E402


def workspace(home, tmp_path):
    ws, sessions = tiny_gallery(home, tmp_path)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = 0.5
        keys = {scope: create_key(s, scope, scope) for scope in ("read", "write")}
    return ws, sessions, keys


def raw_request(port: int, head: str, body_part: bytes = b"", timeout: float = 5.0) -> tuple[float, bytes]:
    """Send a request's head and the start of its body, withhold the rest; the seconds
    until the answer's first bytes, and those bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body_part)
        t = time.perf_counter()
        answer = s.recv(65536)
        waited = time.perf_counter() - t
        while chunk := s.recv(65536):  # a refusal closes the connection after its body
            answer += chunk
        return waited, answer


def multipart_head(path: str, key: str, length: int = 5_000_000, host: str = "127.0.0.1") -> str:
    return (f"POST {path} HTTP/1.1\nHost: {host}\nAuthorization: Bearer {key}\n"
            f"Content-Type: multipart/form-data; boundary=xyz\nContent-Length: {length}\n")


@pytest.mark.integration
def test_scope_and_admission_are_decided_before_the_body(home_with_model, tmp_path):
    ws, sessions, keys = workspace(home_with_model, tmp_path)
    server = Server(home_with_model, ws.database_url, key=keys["write"], refresh=2.0, snapshot=3600)
    server.extra = ["--workers", "1", "--queue", "0", "--header-timeout", "2"]
    server.start()
    try:
        start = b"--xyz\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"a.png\"\r\n\r\n"
        # a read key enrolling 5 MB, of which it sends the first bytes only: 403 at once
        waited, answer = raw_request(server.port, multipart_head("/v1/identities/x/photos", keys["read"]),
                                     start)
        assert answer.startswith(b"HTTP/1.1 403") and b"connection: close" in answer.lower()
        assert waited < 2.0
        # one inference request admitted and waiting for its body holds the only place...
        with socket.create_connection(("127.0.0.1", server.port)) as held:
            held.sendall(multipart_head("/v1/search", keys["read"]).replace("\n", "\r\n").encode()
                         + b"\r\n" + start)
            time.sleep(0.5)
            # ... so the next is refused from its headers, its body never read
            waited, answer = raw_request(server.port, multipart_head("/v1/search", keys["read"]), start)
            assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower()
            assert b'"code":"overloaded"' in answer and waited < 2.0
        time.sleep(0.5)  # the held request's place is given back when it goes
        assert server.search(png(), k=1)  # an ordinary client is answered
        # 200 idle connections (no request sent) do not stop a client being answered
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
        try:
            t = time.perf_counter()
            assert server.client.get("/healthz").status_code == 200
            assert time.perf_counter() - t < 1.0
            # and they are cut after --header-timeout, as is a client dribbling its headers
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
                t = time.perf_counter()
                closed = False
                for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n":
                    try:
                        slow.sendall(bytes([byte]))
                    except OSError:
                        closed = True
                        break
                    time.sleep(0.2)
                if not closed:
                    assert slow.recv(100) == b""
                assert time.perf_counter() - t < 5
            assert idle[0].recv(100) == b""  # closed by the server, long since
        finally:
            for s in idle:
                s.close()
    finally:
        server.kill()


@pytest.mark.integration
def test_no_auth_answers_only_its_own_host_and_origin(home_with_model, tmp_path):
    ws, sessions, _ = workspace(home_with_model, tmp_path)
    server = Server(home_with_model, ws.database_url, refresh=2.0, snapshot=3600)
    server.extra = ["--allowed-host", "faces.example"]
    server.start()
    try:
        c = server.client
        assert c.get("/healthz", headers={"Host": "evil.example"}).json()["code"] == "bad_host"
        assert c.get("/healthz", headers={"Host": "faces.example"}).status_code == 200
        assert c.get("/healthz", headers={"Host": f"localhost:{server.port}"}).status_code == 200
        # a page on another site posting a form to the loopback server
        r = c.post("/v1/identities/x/photos", headers={"Origin": "http://evil.example"},
                   files=[("photos", ("a.png", png()))])
        assert r.status_code == 403 and r.json()["code"] == "foreign_origin"
        r = c.post("/v1/identities/x/photos", headers={"Origin": server.url},
                   files=[("photos", ("a.png", png()))])
        assert r.status_code == 201
        r = c.post("/v1/search", headers={"Origin": "http://evil.example"}, files={"photo": ("p", png())})
        assert r.status_code == 403  # searching posts too: no other site may use the server
    finally:
        server.kill()


@pytest.fixture
def client(home_with_model, tmp_path):
    ws, sessions, keys = workspace(home_with_model, tmp_path)
    app = create_app(ws, sessions, Settings(model="tiny", max_pixels=1_000_000))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {keys['write']}"
        yield c, ws, sessions
    sessions.kw["bind"].dispose()


def test_security_headers_on_every_response(client):
    c, _, _ = client
    icon = c.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    for r in (icon, c.get("/healthz"), c.get("/static/app.js"), c.get("/v1/nothing"),
              c.post("/v1/search", files={"photo": ("p", b"junk")}), c.get("/")):
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_only_the_listed_formats_and_sizes_are_decoded(client):
    c, _, _ = client
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    r = c.post("/v1/search", files={"photo": ("a.eps", eps)})
    assert r.status_code == 415 and r.json()["code"] == "not_an_image"
    tiff = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(tiff, "TIFF")
    assert c.post("/v1/search", files={"photo": ("a.tif", tiff.getvalue())}).status_code == 415
    big = io.BytesIO()  # 16-bit, 1.2 megapixels, a few kB: over this server's --max-pixels
    PILImage.fromarray(np.zeros((1000, 1200), np.uint16)).save(big, "PNG")
    r = c.post("/v1/search", files={"photo": ("big.png", big.getvalue())})
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_metrics_labels_are_a_closed_set(client):
    c, _, _ = client
    for n in range(20):
        c.request(f"X{n:04d}", "/healthz")
        c.get(f"/made/up/{n}")
    text = c.get("/metrics").text
    methods = {line.split('method="')[1].split('"')[0] for line in text.splitlines()
               if line.startswith("verifier_requests_total{")}
    routes = {line.split('route="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("verifier_requests_total{")}
    assert methods <= {"GET", "POST", "other"} and "other" in methods
    assert "unmatched" in routes and not any(r.startswith("/made") for r in routes)


def test_faces_are_not_cached_and_paths_never_shown(client):
    c, ws, sessions = client
    enrolled = c.post("/v1/identities/someone/photos", files=[("photos", ("a.png", png(3, 3)))])
    photo_id = enrolled.json()["photos"][0]["photo_id"]
    r = c.get(f"/v1/photos/{photo_id}/face")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    with sessions() as s:
        path = gallery.gallery_photo(s, photo_id).path
    (ws.root / path).unlink()
    r = c.get(f"/v1/photos/{photo_id}/face")
    assert r.status_code == 404 and str(ws.root) not in r.text and f"photo {photo_id}" in r.text
    assert c.delete(f"/v1/photos/{photo_id}").json() == {"removed_photos": 1}


def test_failed_keys_are_rate_limited_and_used_keys_dated(client, home_with_model):
    from click.testing import CliRunner

    from jobs.api.settings import DEFAULT_AUTH_FAILURES as FAILURES_ALLOWED
    from jobs.cli import main

    c, ws, sessions = client
    assert c.get("/v1/identities").status_code == 200  # the good key: used now
    for _ in range(100):  # written by another thread, best effort
        r = CliRunner().invoke(main, ["--home", str(home_with_model), "keys", "list", "--json"])
        used = {k["name"]: k["last_used"] for k in __import__("json").loads(r.output)}
        if used["write"] is not None:
            break
        time.sleep(0.05)
    assert used["write"] is not None and used["read"] is None
    bad = {"Authorization": "Bearer sv_not-a-key"}
    codes = [c.get("/v1/identities", headers=bad).status_code for _ in range(FAILURES_ALLOWED + 2)]
    assert codes[:FAILURES_ALLOWED] == [401] * FAILURES_ALLOWED and codes[-2:] == [429, 429]
    r = c.get("/v1/identities", headers=bad)
    assert r.json()["code"] == "too_many_failures" and int(r.headers["retry-after"]) > 0
    assert c.get("/v1/identities").status_code == 200  # a good key from the same address


def test_while_the_model_loads_inference_is_503_loading(home_with_model, tmp_path):
    ws, sessions, keys = workspace(home_with_model, tmp_path)
    app = create_app(ws, sessions, Settings(model="tiny"))
    c = TestClient(app)  # not entered: the lifespan (the model's loading) has not run
    r = c.post("/v1/search", headers={"Authorization": f"Bearer {keys['read']}"},
               files={"photo": ("p", png())})
    assert r.status_code == 503 and r.json()["code"] == "loading" and r.headers["retry-after"] == "1"


def test_a_persons_faces_come_as_one_strip_with_an_etag(client):
    c, ws, sessions = client
    for seed in (1, 2, 3):
        assert c.post("/v1/identities/stripe/photos", files=[("photos", (f"{seed}.png", png(2, 50 + seed)))]).status_code == 201
    r = c.get("/v1/identities/stripe/faces", params={"size": 40})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-faces"] == "3" and "private" in r.headers["cache-control"]
    assert PILImage.open(io.BytesIO(r.content)).size == (120, 40)
    again = c.get("/v1/identities/stripe/faces", params={"size": 40},
                  headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert c.get("/v1/identities/stripe/faces", params={"size": 40, "limit": 2}).headers["etag"] != r.headers["etag"]
    assert c.get("/v1/identities/nobody/faces").json()["code"] == "identity_not_found"
    assert c.get("/v1/identities/stripe/faces", params={"size": 10_000}).status_code == 422
