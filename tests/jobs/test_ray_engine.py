"""`verifier embed --engine ray` on a local Ray (2 CPUs): the same vectors, summary and
database as the local engine; bad photos handled alike; a killed run resumed."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from jobs.cli import main
from jobs.embed import embed_gallery
from jobs.engines import EmbedError
from storage.database import open_database
from storage.schema import Embedding, Image
from storage.workspace import Workspace
from tests.processes import kill_after_commits
from verifier.synthetic import write_identity_set

ROOT = Path(__file__).resolve().parents[2]


def stored(sessions) -> dict[str, tuple]:
    with sessions() as s:
        rows = s.execute(select(Image.path, Image.status, Image.reason, Image.flags, Embedding.vector)
                         .outerjoin(Embedding, Embedding.image_id == Image.id)).all()
    return {Path(r[0]).name + "@" + Path(r[0]).parent.name: r[1:] for r in rows}


def with_detector(home: Path) -> Path:
    path = home / "models" / "tiny" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "detector": "mtcnn"}))
    return home


@pytest.mark.integration
def test_ray_and_local_agree(home_with_model, tmp_path):
    pytest.importorskip("ray")
    data = write_identity_set(tmp_path / "g", identities=3, per_identity=4, size=48)
    (data / "person_00" / "broken.jpg").write_bytes(b"not a jpeg")
    homes = []
    for engine in ("local", "ray"):
        home = with_detector(Path(shutil.copytree(home_with_model, tmp_path / engine)))
        ws = Workspace.open(home)
        sessions = open_database(ws.database_url)
        summary = embed_gallery(ws, sessions, data, model="tiny", quiet=True, engine=engine,
                                workers=2)
        homes.append((summary, stored(sessions)))
    (local, local_rows), (ray_, ray_rows) = homes
    assert (ray_.added, ray_.skipped, ray_.flagged) == (local.added, local.skipped, local.flagged)
    assert local.added == 12 and list(local.skipped.values()) == ["not_an_image"]
    assert local.flagged == {"no_face": 12}  # stripes have no face: the whole photo is used
    assert set(ray_rows) == set(local_rows)
    for key, (status, reason, flags, vector) in local_rows.items():
        other = ray_rows[key]
        assert other[:3] == (status, reason, flags), key
        if vector is not None:
            np.testing.assert_allclose(np.frombuffer(other[3], np.float32),
                                       np.frombuffer(vector, np.float32), atol=1e-5)


@pytest.mark.integration
def test_a_killed_ray_run_is_completed_by_the_next(home_with_model, tmp_path):
    pytest.importorskip("ray")
    # 240 photos committed one at a time: a run long enough that the kill lands inside
    # it even on a loaded machine (with 120 in batches of 2, a CI run once committed
    # everything between two looks at the database)
    total = 240
    data = write_identity_set(tmp_path / "big", identities=20, per_identity=12, size=32)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "jobs", "--home", str(home_with_model), "-q", "embed",
           "--data", str(data), "--batch-size", "1", "--engine", "ray", "--workers", "1"]
    db = home_with_model / "verifier.db"
    count = kill_after_commits(cmd, db, 4, timeout=180, cwd=ROOT, env=env)
    assert 4 <= count < total, "the kill did not land mid-run"
    # the next run, a fresh process as a user starts it: it completes the work and
    # prints nothing on stderr (no Ray or TensorFlow start-up notes) without -v
    plain = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    resumed = subprocess.run(cmd[:-6] + ["--engine", "ray", "--workers", "1", "--json"], cwd=ROOT,
                             env=plain, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.strip() == ""
    doc = json.loads(resumed.stdout)
    assert doc["added"] == total - doc["unchanged"] and doc["unchanged"] >= 4
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*), count(distinct image_id) from embeddings").fetchone() \
            == (total, total)
    assert CliRunner().invoke(main, ["--home", str(home_with_model), "doctor"]).exit_code == 0


@pytest.mark.integration
def test_a_worker_that_dies_is_restarted_and_its_batches_retried(tmp_path):
    ray = pytest.importorskip("ray")
    from jobs.engines.ray import dispatch, worker_options

    marker = tmp_path / "died"

    class Dying:  # dies (the whole process) the first time it is given batch 3
        def embed(self, batch):
            if batch[0][0] == 3 and not marker.exists():
                marker.touch()
                os._exit(1)
            return [i for i, _ in batch], np.zeros((len(batch), 2), np.float32)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        actors = [ray.remote(Dying).options(**worker_options(1)).remote() for _ in range(2)]
        got = sorted(i for ids, _ in dispatch(ray, actors, [[(k, f"p{k}")] for k in range(8)])
                     for i in ids)
    finally:
        ray.shutdown()
    assert marker.exists() and got == list(range(8))


def test_a_cluster_address_where_nothing_answers_is_a_clear_error_at_once():
    import socket
    import time

    from jobs.engines.ray import _check_reachable

    with socket.socket() as taken:  # a port that is bound but does not listen: refused
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        t = time.perf_counter()
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(EmbedError, match=f"nothing answers at 127.0.0.1:{port}"):
                _check_reachable(address)
        assert time.perf_counter() - t < 5
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        _check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")
    _check_reachable("auto")  # Ray looks for a local cluster itself, and says so at once
    for bad in ("ray://nohost:", "justahost", "127.0.0.1:port"):
        with pytest.raises(EmbedError, match="is not auto, host:port or ray://host:port"):
            _check_reachable(bad)


def test_joining_no_cluster_is_a_clear_error(home_with_model, tmp_path):
    pytest.importorskip("ray")
    if os.environ.get("RAY_ADDRESS") or Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("a Ray cluster runs on this machine")
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "embed", "--data", str(data),
                                  "--engine", "ray", "--ray-address", "auto"])
    assert r.exit_code == 1 and "cannot join the Ray cluster at 'auto'" in r.output
    assert "Traceback" not in r.output


def test_without_ray_the_message_says_how_to_install(home_with_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    ws = Workspace.open(home_with_model)
    with pytest.raises(EmbedError, match=r"pip install 'siamese-verifier\[ray\]'"):
        embed_gallery(ws, open_database(ws.database_url), data, model="tiny", quiet=True,
                      engine="ray")
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "embed", "--data", str(data),
                                  "--engine", "ray"])
    assert r.exit_code == 1 and "siamese-verifier[ray]" in r.output and "Traceback" not in r.output
