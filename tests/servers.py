"""A real `verifier serve` process on 127.0.0.1, for the crash and consistency tests
and the soak benchmark: started, SIGKILLed, restarted, asked over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``verifier serve`` over workspace ``home`` and database ``db_url`` (``--no-auth``
    unless ``key`` is given), following the change log every ``refresh`` seconds. A
    restarted server keeps its port."""

    def __init__(self, home: Path, db_url: str, *, refresh: float = 0.1,
                 snapshot: float = 0.5, key: str | None = None) -> None:
        self.home, self.db_url = home, db_url
        self.refresh, self.snapshot = refresh, snapshot
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.extra: list[str] = []  # more `verifier serve` options
        self.port = free_port()
        self.log = Path(home).parent / f"server-{id(self)}.log"  # its standard error, kept
        self.proc: subprocess.Popen | None = None
        self.client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobs", "--home", str(self.home), "--db-url", self.db_url, "-q",
             "serve", *([] if self.headers else ["--no-auth"]), "--host", "127.0.0.1",
             "--port", str(self.port), "--refresh-interval", str(self.refresh),
             "--snapshot-interval", str(self.snapshot), *self.extra],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"),
            start_new_session=True)
        self.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=60)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.tail())
            try:
                if self.client.get("/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise AssertionError("the server did not start")

    def tail(self, chars: int = 3000) -> str:
        """The end of what the server wrote to standard error (all its runs)."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM: requests in flight end and the index snapshot is saved. Returns the
        exit status."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(60)
        self.kill()
        return code

    def kill(self) -> None:
        """SIGKILL the server (no snapshot, no goodbye)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.client is not None:
            self.client.close()
        self.proc = self.client = None

    @property
    def http(self) -> httpx.Client:
        """The client of the running server; a killed one refuses the connection, as
        its port does (a burst thread may still be sending when the kill lands)."""
        if self.client is None:
            raise httpx.ConnectError(f"server {self.port} was killed")
        return self.client

    def wait_caught_up(self, timeout: float = 30) -> float:
        """Wait until ``/readyz`` says the server applied every change; the seconds waited."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            r = self.http.get("/readyz")
            if r.status_code == 200:
                return time.time() - t0
            time.sleep(0.01)
        raise AssertionError(f"server {self.port} still behind after {timeout} s: {r.text}")

    def search(self, photo: bytes, k: int = 3) -> list[dict]:
        r = self.http.post("/v1/search", data={"k": str(k)}, files={"photo": ("p.png", photo)})
        if r.status_code == 409 and r.json()["code"] == "gallery_empty":
            return []
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{self.tail()}"
        return r.json()["matches"]

    def enroll(self, name: str, photos: list[bytes]) -> int:
        files = [("photos", (f"p{n}.png", p)) for n, p in enumerate(photos)]
        return self._code(self.http.post(f"/v1/identities/{name}/photos", files=files))

    def _code(self, r: httpx.Response) -> int:
        assert r.status_code < 500, f"{r.status_code} {r.text}\n{self.tail()}"
        return r.status_code

    def delete(self, path: str) -> int:
        return self._code(self.http.delete(path))

    def move_face(self, photo_id: int, name: str) -> int:
        return self._code(self.http.patch(f"/v1/photos/{photo_id}", json={"identity": name}))

    def rename(self, old: str, new: str, merge: bool = False) -> int:
        return self._code(self.http.patch(f"/v1/identities/{old}", json={"name": new, "merge": merge}))
