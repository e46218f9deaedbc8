import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from sqlalchemy import func, select

from jobs.cli import main
from jobs.embed import embed_gallery
from jobs.models import load_model
from storage import gallery, models
from storage.database import open_database
from storage.errors import WorkspaceBusy
from storage.index import load_index, sidecar_path
from storage.lock import job_lock
from storage.schema import Embedding, Image
from storage.workspace import Workspace
from tests.processes import kill_after_commits
from verifier.synthetic import write_identity_set


def _check_consistent(ws, sessions, name="tiny"):
    with sessions() as s:
        model = models.get_model(s, name)
        ids = gallery.model_ids(s, model.id)
        pairs = s.execute(select(Embedding.image_id, func.count()).group_by(Embedding.image_id)
                          .having(func.count() > 1)).all()
    assert not pairs, "duplicate embeddings"
    index, info = load_index(ws.index_path(name), model=name, ids=ids)
    return len(ids)


def test_incremental_embedding(home_with_model, tmp_path, db_url):
    ws = Workspace.open(home_with_model)
    sessions = open_database(db_url)
    data = write_identity_set(tmp_path / "gallery", identities=3, per_identity=4, size=32)
    loaded = load_model(ws, "tiny")

    first = embed_gallery(ws, sessions, data, loaded=loaded, quiet=True)
    assert (first.added, first.unchanged) == (12, 0) and first.model_calls > 0
    assert first.index_rebuilt and _check_consistent(ws, sessions) == 12

    again = embed_gallery(ws, sessions, data, loaded=loaded, quiet=True)
    assert (again.added, again.unchanged, again.model_calls) == (0, 12, 0)
    assert not again.index_rebuilt

    # change one file, move one (same bytes, other person), delete one, add a bad one
    changed = data / "person_00" / "img_00.png"
    PILImage.fromarray(np.zeros((32, 32, 3), np.uint8)).save(changed)
    shutil.move(data / "person_01" / "img_00.png", data / "person_02" / "renamed.png")
    (data / "person_02" / "img_03.png").unlink()
    (data / "person_02" / "broken.jpg").write_bytes(b"not a jpeg")
    with sessions() as s:
        moved_before = s.scalar(select(Embedding.vector).join(Image, Embedding.image_id == Image.id)
                                .where(Image.path.endswith("person_01/img_00.png")))
    third = embed_gallery(ws, sessions, data, loaded=loaded, quiet=True)
    assert (third.updated, third.moved, third.missing, third.model_calls) == (1, 1, 1, 1)
    assert third.added == 0 and third.unchanged == 9
    assert list(third.skipped.values()) == ["not_an_image"]
    with sessions() as s:
        row = s.scalar(select(Image).where(Image.path.endswith("renamed.png")))
        assert row.identity.name == "person_02"
        moved_after = s.scalar(select(Embedding.vector).where(Embedding.image_id == row.id))
        assert moved_after == moved_before  # not embedded again
        assert s.scalar(select(Image.status).where(Image.path.endswith("broken.jpg"))) == "skipped"
    assert _check_consistent(ws, sessions) == 12  # the missing one is kept until --prune

    pruned = embed_gallery(ws, sessions, data, loaded=loaded, prune=True, quiet=True)
    assert pruned.removed == 1 and pruned.model_calls == 0
    assert _check_consistent(ws, sessions) == 11
    sessions.kw["bind"].dispose()


def test_second_embed_fails_at_once(home_with_model, tmp_path):
    ws = Workspace.open(home_with_model)
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    with job_lock(ws.locks_dir / "gallery.lock"):
        with pytest.raises(WorkspaceBusy, match="--wait"):
            embed_gallery(ws, open_database(ws.database_url), data, model="tiny", quiet=True)
        r = CliRunner().invoke(main, ["--home", str(home_with_model), "embed", "--data", str(data)])
        assert r.exit_code == 1 and "another embed is running" in r.output


def test_cli_embed_gallery_doctor(home_with_model, tmp_path):
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=3, size=32)
    (data / "person_00" / "empty.png").write_bytes(b"")
    home = str(home_with_model)
    run = CliRunner().invoke
    r = run(main, ["--home", home, "-q", "embed", "--data", str(data)])
    assert r.exit_code == 0, r.output
    assert "6 added" in r.output and "skipped" in r.output and "empty" in r.output
    r = run(main, ["--home", home, "embed", "--data", str(data), "--json"])
    doc = json.loads(r.output)
    assert doc["model_calls"] == 0 and doc["unchanged"] == 6
    r = run(main, ["--home", home, "gallery", "--json"])
    doc = json.loads(r.output)
    assert doc["identities"] == [{"name": "person_00", "photos": 3}, {"name": "person_01", "photos": 3}]
    assert doc["models"][0]["embeddings"] == 6
    r = run(main, ["--home", home, "gallery"])
    assert "person_00" in r.output and "tiny" in r.output
    r = run(main, ["--home", home, "doctor"])
    assert r.exit_code == 0 and "agree" in r.output

    ws = Workspace.open(home_with_model)
    path = ws.index_path("tiny")
    good = path.read_bytes()
    # corrupt sidecar, truncated file, index of another model: refused, then repaired
    breakages = [lambda: sidecar_path(path).write_text("{"),
                 lambda: path.write_bytes(good[:100]),
                 lambda: sidecar_path(path).write_text(
                     sidecar_path(path).read_text().replace('"tiny"', '"other"'))]
    for breakage in breakages:
        breakage()
        r = run(main, ["--home", home, "doctor"])
        assert r.exit_code == 1 and "doctor --repair" in r.output, r.output
        r = run(main, ["--home", home, "doctor", "--repair"])
        assert r.exit_code == 0 and "rebuilt the index of tiny" in r.output
        r = run(main, ["--home", home, "doctor"])
        assert r.exit_code == 0


def test_sigkill_mid_run_then_rerun(home_with_model, tmp_path):
    """Kill -9 while batches are being committed; the rerun completes the gallery."""
    data = write_identity_set(tmp_path / "big", identities=20, per_identity=20, size=32)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "jobs", "--home", str(home_with_model), "-q", "embed",
           "--data", str(data), "--batch-size", "1"]
    count = kill_after_commits(cmd, home_with_model / "verifier.db", 5, timeout=120, env=env)
    assert 5 <= count < 400, "the kill did not land mid-run"
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    summary = embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    assert summary.added == 400 - summary.unchanged and summary.unchanged >= 5
    assert _check_consistent(ws, sessions) == 400


def test_every_bad_input_inside_a_gallery_run(home_with_model, tmp_path):
    import io

    rng = np.random.default_rng(0)

    def img(w=40, h=30):
        return PILImage.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))

    g = tmp_path / "g"
    person = g / "Ünïcödé person"
    person.mkdir(parents=True)
    img().convert("L").save(person / "gray.png")
    img().convert("CMYK").save(person / "cmyk.jpg")
    PILImage.fromarray((rng.integers(0, 65535, (30, 40))).astype(np.uint16)).save(person / "sixteen.png")
    exif = PILImage.Exif()
    exif[0x0112] = 6
    img().save(person / "rotated.jpg", exif=exif.tobytes())
    img().save(person / "odd name #1 (copy).PNG")
    (person / "empty.png").write_bytes(b"")
    (person / "corrupt.jpg").write_bytes(b"\xff\xd8garbage")
    buf = io.BytesIO()
    img(200, 200).save(buf, "PNG")
    (person / "truncated.png").write_bytes(buf.getvalue()[:300])
    img(400, 400).save(person / "huge.png")
    (person / ".hidden.png").write_bytes(b"")
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    s = embed_gallery(ws, sessions, g, model="tiny", max_pixels=100_000, quiet=True)
    assert s.added == 5
    reasons = {Path(p).name: r for p, r in s.skipped.items()}
    assert reasons == {"empty.png": "empty", "corrupt.jpg": "not_an_image",
                       "truncated.png": "truncated", "huge.png": "too_large"}
    with sessions() as session:
        rotated = session.scalar(select(Image).where(Image.path.endswith("rotated.jpg")))
        assert (rotated.width, rotated.height) == (30, 40)
    again = embed_gallery(ws, sessions, g, model="tiny", max_pixels=100_000, quiet=True)
    assert again.model_calls == 0 and len(again.skipped) == 4
    assert _check_consistent(ws, sessions) == 5


def test_wait_queues_behind_the_running_embed(home_with_model, tmp_path):
    import threading

    ws = Workspace.open(home_with_model)
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    held, release = threading.Event(), threading.Event()

    def holder():
        with job_lock(ws.locks_dir / "gallery.lock"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()
    t = time.time()
    summary = embed_gallery(ws, open_database(ws.database_url), data, model="tiny", wait=True,
                            quiet=True)
    thread.join()
    assert summary.added == 4 and time.time() - t >= 0.4


def test_missing_detector_stops_the_job(home_with_model, tmp_path, monkeypatch):
    """A detector that cannot load is a setup error, not a gallery of faceless photos."""
    import sys

    from verifier.errors import DetectorUnavailable
    from verifier.faces import MTCNNDetector

    config_path = home_with_model / "models" / "tiny" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "detector": "mtcnn"}))
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # import mtcnn -> ImportError
    monkeypatch.setenv("VERIFIER_CACHE", str(tmp_path / "empty"))  # no cached networks either
    monkeypatch.setattr(MTCNNDetector, "_instance", None)
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    with pytest.raises(DetectorUnavailable, match="pip install mtcnn"):
        embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    with sessions() as s:
        assert s.scalar(select(func.count(Embedding.id))) == 0
        assert not s.scalars(select(Image).where(Image.flags.is_not(None))).all()
        assert not s.scalars(select(Image).where(Image.status == "skipped")).all()
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "-q", "embed", "--data", str(data)])
    assert r.exit_code == 1 and "mtcnn face detector cannot be loaded" in r.output
    assert "Traceback" not in r.output


def test_summary_counts_when_a_changed_file_no_longer_decodes(home_with_model, tmp_path):
    import io

    data = write_identity_set(tmp_path / "g", identities=2, per_identity=3, size=32)
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    first = embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    assert (first.added, first.updated) == (6, 0)
    buf = io.BytesIO()
    PILImage.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(buf, "PNG")
    (data / "person_00" / "img_00.png").write_bytes(buf.getvalue()[:80])  # header fine, pixels cut
    PILImage.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "person_00" / "img_01.png")
    second = embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    assert (second.added, second.updated, second.unchanged) == (0, 1, 4)
    assert list(second.skipped.values()) == ["truncated"]
    assert _check_consistent(ws, sessions) == 5
