"""The catalogue of hostile requests an independent test sent (issue 35): each is
answered 4xx, never 500, on a real server over raw sockets where the behaviour lives
in the HTTP layer, in process for the rest. One server serves the whole catalogue."""
from __future__ import annotations

import json
import socket
import time

import pytest

pytest.importorskip("httpx")
from storage import gallery  # noqa: E402
from storage import models  # noqa: E402
from tests.jobs.test_service_hardening import client, workspace  # noqa: E402,F401 - a fixture
from tests.photos import png  # noqa: E402
from tests.servers import Server  # noqa: E402

MAX_UPLOAD = 200_000


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send ``raw`` on one connection and read until the server closes it (or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except socket.timeout:
            pass
        return answer


def stream(port: int, head: bytes, chunks: list[bytes], timeout: float = 10.0) -> bytes:
    """Send ``head`` then ``chunks`` one by one, stopping as soon as the server answers
    (a refusal closes the connection; sending on would meet a reset); the answer."""
    import select

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        answer = b""
        for chunk in chunks:
            if select.select([s], [], [], 0.05)[0]:
                break
            try:
                s.sendall(chunk)
            except OSError:
                break
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1].split(b"\r\n\r\n")[0] or b"{}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_home):
    import shutil

    tmp = tmp_path_factory.mktemp("hostile")
    home = tmp / "home"
    shutil.copytree(trained_home / "models", home / "models")
    ws, sessions, _ = workspace(home, tmp)
    sessions.kw["bind"].dispose()
    s = Server(home, ws.database_url, refresh=2.0, snapshot=3600)
    s.extra = ["--max-upload", str(MAX_UPLOAD), "--workers", "1", "--queue", "0",
               "--body-timeout", "0.5"]
    s.start()
    yield s
    s.kill()


@pytest.mark.integration
@pytest.mark.parametrize("framing", [
    "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
])
def test_a_body_framed_two_ways_is_refused_and_nothing_after_it_is_read(server, framing):
    smuggled = b"GET /v1/identities HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    raw = (f"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n").encode() \
        + b"0\r\n\r\n" + smuggled
    answer = exchange(server.port, raw)
    assert status_of(answer) == 400 and body_of(answer)["code"] == "bad_request", answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the smuggled request got no answer
    assert b"connection: close" in answer.lower()


@pytest.mark.integration
def test_bare_lf_line_endings_are_refused(server):
    answer = exchange(server.port, b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n")
    assert status_of(answer) == 400 and body_of(answer)["code"] == "bad_request", answer
    assert status_of(exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 200


@pytest.mark.integration
@pytest.mark.parametrize("header", ["Host: [", "Host: [::1", "Host: evil.example@127.0.0.1"])
def test_malformed_or_deceptive_hosts_are_400(server, header):
    answer = exchange(server.port, f"GET /healthz HTTP/1.1\r\n{header}\r\n\r\n".encode())
    assert status_of(answer) == 400, answer
    assert body_of(answer)["code"] in ("bad_host", "bad_request")


@pytest.mark.integration
def test_origins_must_be_this_servers_own(server):
    c = server.client
    files = [("photos", ("a.png", png(4, 4)))]
    for origin, status in (("http://[", 400), ("http://[::1", 400),
                           ("http://127.0.0.1:9", 403),  # another port: another origin
                           (f"http://evil.example@127.0.0.1:{server.port}", 403),
                           (f"http://localhost:{server.port}", 201)):
        r = c.post("/v1/identities/origin_test/photos", headers={"Origin": origin}, files=files)
        assert r.status_code == status, (origin, r.status_code, r.text)
        assert status == 201 or "code" in r.json()


@pytest.mark.integration
def test_a_chunked_body_over_the_limit_is_413_like_its_content_length_twin(server):
    head = (b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n")
    start = b"--xyz\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\r\n"
    part = b"x" * 65536
    chunks = [start] + [part] * (MAX_UPLOAD // len(part) + 2)
    framed = [b"%x\r\n" % len(c) + c + b"\r\n" for c in chunks] + [b"0\r\n\r\n"]
    for _ in range(3):  # a reset can overtake the answer on a loaded machine: ask again
        if answer := stream(server.port, head, framed):
            break
    assert status_of(answer) == 413 and body_of(answer)["code"] == "too_large", answer[:300]


@pytest.mark.integration
def test_a_slow_body_is_cut_with_408_and_its_place_freed(server):
    head = (b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000\r\n\r\n--xyz\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(head)
        t = time.perf_counter()
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                slow.sendall(b"a")  # a byte now and then: never done
            except OSError:
                break
            slow.settimeout(0.2)
            try:
                answer += slow.recv(65536)
            except socket.timeout:
                pass
            assert time.perf_counter() - t < 8, "the slow body was never cut"
        # the head can come in one packet and the body in the next: read on to the
        # close the answer announces (``connection: close``)
        slow.settimeout(2)
        while b"body_timeout" not in answer:
            try:
                more = slow.recv(65536)
            except OSError:
                break
            if not more:
                break
            answer += more
    assert status_of(answer) == 408 and b"body_timeout" in answer, answer
    assert server.search(png(), k=1)  # the only inference place is free again


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/v1/identities/./photos", "/v1/identities/%2E/photos",
                                  "/v1/identities/%2E%2E/photos", "/v1/identities/" + "n" * 256 + "/photos"])
def test_names_that_are_paths_or_too_long_are_invalid_names(server, path):
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"a.png\"\r\n\r\n"
            + png(1, 2) + b"\r\n--xyz--\r\n")
    raw = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    answer = exchange(server.port, raw)
    assert status_of(answer) == 422 and body_of(answer)["code"] == "invalid_name", answer[:400]


# -- in process ------------------------------------------------------------------------

def test_names_that_read_as_another_persons_are_refused(client):
    c, _, _ = client
    assert c.post("/v1/identities/obama/photos", files=[("photos", ("a.png", png(2, 21)))]).status_code == 201
    for twin in ("OBAMA", "\u043ebama", "\uff4f\uff42\uff41\uff4d\uff41"):  # case, Cyrillic o, full width
        r = c.post(f"/v1/identities/{twin}/photos", files=[("photos", ("b.png", png(2, 22)))])
        assert r.status_code == 409 and r.json()["code"] == "confusable_name", (twin, r.text)
        assert "'obama'" in r.json()["message"]
        r = c.patch("/v1/identities/person_00", json={"name": twin})
        assert r.status_code == 409 and r.json()["code"] == "confusable_name", (twin, r.text)
    r = c.patch("/v1/identities/obama", json={"name": "Obama"})  # a person's own name, recased
    assert r.status_code == 200 and r.json()["name"] == "Obama"
    r = c.patch("/v1/identities/Obama", json={"name": "Obama"})  # to their own name: nothing to do
    assert r.status_code == 200 and r.json()["photos"] == 1


def test_verify_thresholds_must_be_finite_and_positive(client):
    c, _, _ = client
    files = {"photo_a": ("a.png", png(0, 1)), "photo_b": ("b.png", png(0, 2))}
    for bad in ("nan", "inf", "-inf", "-1", "0", "1e308"):
        r = c.post("/v1/verify", data={"threshold": bad}, files=files)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (bad, r.text)
    assert c.post("/v1/verify", data={"threshold": "0.5"}, files=files).status_code == 200


def test_the_same_bytes_under_a_second_name_are_409_naming_the_person(client, tmp_path):
    c, _, _ = client
    folder_photo = next(iter(sorted((tmp_path / "g").rglob("*.png"))))
    r = c.post("/v1/identities/not_them/photos", files=[("photos", ("a.png", folder_photo.read_bytes()))])
    assert r.status_code == 409 and r.json()["code"] == "already_enrolled", r.text
    assert repr(folder_photo.parent.name) in r.json()["message"]


def test_a_full_disk_is_507_nothing_is_half_written_and_searches_go_on(client, monkeypatch):
    import errno

    import jobs.live

    c, ws, sessions = client
    with sessions() as s:
        before = len(gallery.model_ids(s, models.get_model(s, "tiny").id))

    def no_space(path, data, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jobs.live, "write_bytes_atomic", no_space)
    for _ in range(2):  # and the next one too: the server keeps answering
        r = c.post("/v1/identities/full/photos", files=[("photos", ("a.png", png(3, 31)))])
        assert r.status_code == 507 and r.json()["code"] == "insufficient_storage", r.text
    with sessions() as s:
        assert len(gallery.model_ids(s, models.get_model(s, "tiny").id)) == before
        assert not gallery.identity_exists(s, "full")
    assert not list(ws.enrolled_dir.rglob("*.png")) if ws.enrolled_dir.exists() else True
    assert c.post("/v1/search", files={"photo": ("p.png", png())}).status_code == 200
    monkeypatch.undo()
    assert c.post("/v1/identities/full/photos", files=[("photos", ("a.png", png(3, 31)))]).status_code == 201


def test_a_locked_database_authenticates_and_answers_busy_within_a_bounded_wait(
        client, monkeypatch):
    """Another process holds SQLite's write lock: searches and key checks go on;
    an enrollment is 503 busy with Retry-After after a bounded wait, not 500."""
    import sqlite3

    import storage.database

    c, ws, _ = client
    monkeypatch.setattr(storage.database, "BUSY_WAIT_S", 1.0)
    holder = sqlite3.connect(ws.root / "verifier.db", timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        t = time.perf_counter()
        assert c.get("/v1/identities").status_code == 200
        assert c.post("/v1/search", files={"photo": ("p.png", png())}).status_code == 200
        assert time.perf_counter() - t < 3
        t = time.perf_counter()
        r = c.post("/v1/identities/locked/photos", files=[("photos", ("a.png", png(3, 41)))])
        assert r.status_code == 503 and r.json()["code"] == "busy", r.text
        assert r.headers["retry-after"] and time.perf_counter() - t < 15
    finally:
        holder.rollback()
        holder.close()
    assert c.post("/v1/identities/locked/photos", files=[("photos", ("a.png", png(3, 41)))]).status_code == 201
