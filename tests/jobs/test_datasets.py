import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs import datasets
from jobs.cli import main
from jobs.datasets import DownloadError, fetch_seed_faces


class _Server:
    """Serves ``files`` (path -> bytes) with Range support; can cut or corrupt."""

    def __init__(self, files):
        self.files = files
        self.cut_once: set[str] = set()
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                rel = self.path.lstrip("/")
                from urllib.parse import unquote
                rel = unquote(rel)
                outer.requests.append((rel, self.headers.get("Range")))
                if rel not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[rel]
                if rel in outer.corrupt:
                    body = b"X" + body[1:]
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if rel in outer.cut_once:
                    outer.cut_once.discard(rel)
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"


@pytest.fixture
def server(monkeypatch):
    files = {f"person_{i}/photo {j}.png": bytes([i, j]) * 5000 for i in range(2) for j in range(2)}
    monkeypatch.setattr(datasets, "manifest", lambda: [(hashlib.sha256(b).hexdigest(), p)
                                                       for p, b in files.items()])
    srv = _Server(files)
    yield srv
    srv.httpd.shutdown()


def test_fetch_downloads_and_skips_present(server, tmp_path):
    s = fetch_seed_faces(tmp_path / "d", base_url=server.url, quiet=True)
    assert len(s.downloaded) == 4
    assert (tmp_path / "d" / "person_1" / "photo 1.png").read_bytes() == server.files["person_1/photo 1.png"]
    again = fetch_seed_faces(tmp_path / "d", base_url=server.url, quiet=True)
    assert again.present == 4 and not again.downloaded


def test_interrupted_transfer_resumes(server, tmp_path):
    server.cut_once.add("person_0/photo 1.png")
    with pytest.raises(DownloadError, match="resumes"):
        fetch_seed_faces(tmp_path / "d", base_url=server.url, quiet=True)
    part = tmp_path / "d" / "person_0" / "photo 1.png.part"
    assert part.exists() and 0 < part.stat().st_size < 10000
    s = fetch_seed_faces(tmp_path / "d", base_url=server.url, quiet=True)
    assert s.resumed == 1
    assert ("person_0/photo 1.png", f"bytes={5000}-") in server.requests
    assert (tmp_path / "d" / "person_0" / "photo 1.png").read_bytes() == server.files["person_0/photo 1.png"]


def test_checksum_mismatch_is_refused(server, tmp_path):
    server.corrupt.add("person_1/photo 0.png")
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch_seed_faces(tmp_path / "d", base_url=server.url, quiet=True)
    assert not (tmp_path / "d" / "person_1" / "photo 0.png").exists()
    assert not list((tmp_path / "d").rglob("*.part"))


def test_offline_message_names_local_folder(tmp_path):
    r = CliRunner().invoke(main, ["--home", str(tmp_path), "datasets", "fetch", "seed-faces",
                                  "--url", "http://127.0.0.1:9/", "--to", str(tmp_path / "d")])
    assert r.exit_code == 1 and "--data ../shared/data/seed-faces" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "d").exists()  # nothing downloaded: no empty folder left behind


def test_manifest_matches_shared_checksums():
    rows = datasets.manifest()
    assert len(rows) == 128 and all(len(d) == 64 for d, _ in rows)
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "seed-faces.sha256"
    if shared.exists():
        assert len(shared.read_text().split()) == 256


@pytest.fixture
def lfw_server(monkeypatch):
    """A small fake LFW: an archive of 3 photos and the three pair lists."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel in ("lfw/Ana/Ana_0001.jpg", "lfw/Ana/Ana_0002.jpg", "lfw/Bo/Bo_0001.jpg"):
            data = rel.encode() * 100
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    files = {"lfw.tgz": buf.getvalue(), "pairs.txt": b"1\nAna 1 2\nAna 1 Bo 1\n",
             "pairsDevTrain.txt": b"1\nAna 1 2\nAna 2 Bo 1\n", "pairsDevTest.txt": b"1\nAna 2 1\nBo 1 Ana 1\n"}
    monkeypatch.setattr(datasets, "LFW_FILES", {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    srv = _Server(files)
    yield srv
    srv.httpd.shutdown()


def test_lfw_download_unpack_resume_and_checksums(lfw_server, tmp_path):
    from jobs.datasets import fetch_lfw
    from verifier.pairlists import read_pair_list

    dest = tmp_path / "lfw-data"
    lfw_server.cut_once.add("lfw.tgz")
    with pytest.raises(DownloadError, match="resumes"):
        fetch_lfw(dest, base_url=lfw_server.url, quiet=True)
    s = fetch_lfw(dest, base_url=lfw_server.url, quiet=True)
    assert s.resumed == 1 and sorted(s.downloaded) == sorted(lfw_server.files)
    assert (dest / "lfw" / "Ana" / "Ana_0002.jpg").read_bytes() == b"lfw/Ana/Ana_0002.jpg" * 100
    assert len(read_pair_list(dest / "pairs.txt").pairs) == 2
    again = fetch_lfw(dest, base_url=lfw_server.url, quiet=True)
    assert again.present == 4 and not again.downloaded
    (dest / "pairs.txt").write_text("tampered")
    lfw_server.corrupt.add("pairs.txt")
    with pytest.raises(DownloadError, match="MD5"):
        fetch_lfw(dest, base_url=lfw_server.url, quiet=True)
    assert not (dest / "pairs.txt.part").exists()


def test_lfw_offline_message_and_cli(lfw_server, tmp_path):
    r = CliRunner().invoke(main, ["--home", str(tmp_path), "datasets", "fetch", "lfw",
                                  "--url", "http://127.0.0.1:9/", "--to", str(tmp_path / "x")])
    assert r.exit_code == 1 and "--data PATH/lfw" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["--home", str(tmp_path), "-q", "datasets", "fetch", "lfw",
                                  "--url", lfw_server.url, "--to", str(tmp_path / "y")])
    assert r.exit_code == 0 and "4 downloaded" in r.output and "--pairs" in r.output
