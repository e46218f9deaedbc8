"""`verifier cluster` mechanics on a tiny model (whole photos, no detector), on
SQLite and PostgreSQL: every content embedded once, runs recorded, group numbers
kept, naming enrolls through the gallery's write path, bad photos skipped."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main
from storage import gallery
from storage.database import open_database
from storage.workspace import Workspace
from verifier.synthetic import write_identity_set

EVERYONE = "100"
"""A threshold every pair of tiny-model vectors passes: one group of all photos."""


@pytest.fixture
def home(home_with_model, db_url, tmp_path):
    sessions = open_database(db_url)
    yield home_with_model, db_url, sessions
    sessions.kw["bind"].dispose()


def flat(folder, identities=3, per_identity=3, seed=7):
    """Photos in one folder, no labels in their names."""
    src = write_identity_set(folder.parent / f"src-{folder.name}-{seed}", identities, per_identity, seed, size=32)
    folder.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(sorted(src.rglob("*.png"))):
        shutil.copy(photo, folder / f"photo_{seed}_{i:03d}.png")
    return folder


def cli(home, db_url, *args):
    r = CliRunner().invoke(main, ["--home", str(home), "--db-url", db_url, "-q", *args])
    return r


def test_rerun_embeds_only_new_photos_and_keeps_group_numbers(home, tmp_path):
    home, db_url, _ = home
    photos = flat(tmp_path / "unsorted")
    first = json.loads(cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE,
                           "--json").output)
    assert first["status"] == "done" and first["counts"]["embedded"] == 9 and first["counts"]["reused"] == 0
    assert len(first["clusters"]) == 1 and first["clusters"][0]["size"] == 9
    group = first["clusters"][0]
    assert group["cluster"] == 0 and sorted(group["photos"]) == sorted(str(p) for p in photos.iterdir())
    assert all(f["box"] is None for f in group["faces"]) and group["suggestion"] is None
    again = json.loads(cli(home, db_url, "cluster", str(photos), "--threshold", EVERYONE, "--json").output)
    assert again["run"] != first["run"] and again["counts"]["embedded"] == 0
    assert again["counts"]["reused"] == 9
    assert again["clusters"][0]["cluster"] == 0 and again["clusters"][0]["new_faces"] == 0
    assert (again["counts"]["continued"], again["counts"]["carried"], again["counts"]["new_faces"]) == \
        (first["run"], 9, 0)
    # a grown folder: only the new photos are embedded, and they join the group, which keeps its number
    flat(photos, identities=1, per_identity=2, seed=8)
    grown = json.loads(cli(home, db_url, "cluster", str(photos), "--threshold", EVERYONE, "--json").output)
    assert grown["counts"]["embedded"] == 2 and grown["counts"]["reused"] == 9
    assert grown["clusters"][0]["size"] == 11 and grown["clusters"][0]["cluster"] == 0
    assert grown["clusters"][0]["new_faces"] == 2 and grown["counts"]["to_groups"] == 2
    fresh = json.loads(cli(home, db_url, "cluster", str(photos), "--threshold", EVERYONE, "--regroup",
                           "--json").output)
    assert "continued" not in fresh["counts"] and fresh["clusters"][0]["size"] == 11
    # show prints the stored run as it was
    shown = json.loads(cli(home, db_url, "cluster", "show", str(grown["run"]), "--json").output)
    assert shown["clusters"] == grown["clusters"] and shown["counts"] == grown["counts"]


def test_a_copy_of_a_photo_is_embedded_once(home, tmp_path):
    home, db_url, _ = home
    photos = flat(tmp_path / "unsorted", identities=1, per_identity=3)
    shutil.copy(next(photos.iterdir()), photos / "copy.png")
    out = json.loads(cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE,
                         "--json").output)
    assert out["counts"]["embedded"] == 3 and out["counts"]["faces"] == 4
    assert out["clusters"][0]["size"] == 4


def test_bad_photos_are_skipped_and_small_groups_unclustered(home, tmp_path):
    home, db_url, _ = home
    photos = flat(tmp_path / "unsorted", identities=2, per_identity=2)
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    r = cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", "1e-9", "--json")
    out = json.loads(r.output)
    assert list(out["skipped"]) == [str(photos / "broken.png")]
    assert out["clusters"] == [] and len(out["unclustered"]) == 4
    table = cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", "1e-9")
    assert table.exit_code == 0 and "skipped" in table.output and "Traceback" not in table.output


def test_naming_a_group_enrolls_it_and_query_finds_it(home, tmp_path):
    home, db_url, sessions = home
    photos = flat(tmp_path / "unsorted", identities=2, per_identity=3)
    out = json.loads(cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE,
                         "--json").output)
    run = str(out["run"])
    r = cli(home, db_url, "cluster", "name", run, "0", "Ada Lovelace", "--json")
    assert r.exit_code == 0, r.output
    named = json.loads(r.output)
    assert named == {"run": out["run"], "cluster": 0, "identity": "Ada Lovelace", "enrolled": 6,
                     "already": 0, "skipped": {}}
    with sessions() as s:
        assert gallery.identity_counts(s) == [("Ada Lovelace", 6)]
        rows = gallery.identity_photos(s, "Ada Lovelace")
        assert all(Workspace.open(home).is_enrolled(row.path) for row in rows)
    # the stored vectors are the run's, equal to what the model computes for the photo
    probe = sorted(photos.iterdir())[0]
    q = json.loads(cli(home, db_url, "query", str(probe), "--json").output)
    best = q["results"][0]["matches"][0]
    assert best["identity"] == "Ada Lovelace" and best["distance"] == pytest.approx(0, abs=1e-5)
    # the run shows the name; naming again as a new person with that name is refused
    shown = json.loads(cli(home, db_url, "cluster", "show", run, "--json").output)
    assert shown["clusters"][0]["named"] == "Ada Lovelace"
    again = cli(home, db_url, "cluster", "name", run, "0", "Ada Lovelace")
    assert again.exit_code == 1 and "--merge-into" in again.output and "Traceback" not in again.output
    merged = json.loads(cli(home, db_url, "cluster", "name", run, "0", "--merge-into", "Ada Lovelace",
                            "--json").output)
    assert merged["enrolled"] == 0 and merged["already"] == 6
    missing = cli(home, db_url, "cluster", "name", run, "0", "--merge-into", "Nobody")
    assert missing.exit_code == 1 and "no identity 'Nobody'" in missing.output


def test_naming_skips_changed_photos_and_photos_of_someone_else(home, tmp_path):
    home, db_url, sessions = home
    photos = flat(tmp_path / "unsorted", identities=1, per_identity=3)
    out = json.loads(cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE,
                         "--json").output)
    first, second, third = sorted(photos.iterdir())
    first.write_bytes(second.read_bytes())  # changed since the run
    third.unlink()  # gone
    r = json.loads(cli(home, db_url, "cluster", "name", str(out["run"]), "0", "grace", "--json").output)
    assert r["enrolled"] == 1 and set(r["skipped"]) == {str(first), str(third)}
    assert "changed since cluster run" in r["skipped"][str(first)]
    # the photo is grace's now: naming the same group as someone else skips it
    out = json.loads(cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE,
                         "--min-size", "1", "--json").output)
    r = json.loads(cli(home, db_url, "cluster", "name", str(out["run"]), str(out["clusters"][0]["cluster"]),
                       "hopper", "--json").output)
    assert r["enrolled"] == 0 and "in the gallery as 'grace'" in next(iter(r["skipped"].values()))


def test_cluster_errors_are_one_line(home, tmp_path):
    home, db_url, _ = home
    # a model saved before thresholds were calibrated at train time
    config_path = home / "models" / "tiny" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("threshold"), config.pop("threshold_rule")
    config_path.write_text(json.dumps(config))
    photos = flat(tmp_path / "unsorted", identities=1, per_identity=2)
    r = cli(home, db_url, "cluster", str(photos))
    assert r.exit_code == 1 and "no calibrated threshold" in r.output and "Traceback" not in r.output
    r = cli(home, db_url, "cluster", "show", "99")
    assert r.exit_code == 1 and "no cluster run 99" in r.output
    r = cli(home, db_url, "cluster", "name", "1", "0")
    assert r.exit_code == 2 and "either NAME" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli(home, db_url, "cluster", str(empty))
    assert r.exit_code == 1 and "no photos found" in r.output


def test_contact_sheet_has_a_thumbnail_per_face(home, tmp_path):
    home, db_url, _ = home
    photos = flat(tmp_path / "unsorted", identities=2, per_identity=2)
    sheet = tmp_path / "sheet.html"
    r = cli(home, db_url, "cluster", str(photos), "--regroup", "--threshold", EVERYONE, "--html", str(sheet))
    assert r.exit_code == 0 and f"contact sheet: {sheet}" in r.output
    page = sheet.read_text()
    assert page.count("data:image/jpeg;base64,") == 4 and "Group 0: 4 faces" in page


def test_progress_is_recorded_while_the_run_goes(home, tmp_path):
    from jobs.cluster import cluster_photos, load_run, photo_items
    from jobs.live import Verifier

    home, db_url, sessions = home
    photos = flat(tmp_path / "unsorted", identities=2, per_identity=2)
    ws = Workspace.open(home)
    seen = []
    v = Verifier.open(ws, sessions, "tiny")
    run = cluster_photos(ws, sessions, photo_items([photos]), verifier=v, threshold=float(EVERYONE),
                         on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4)
    stored = load_run(sessions, run.run)
    assert stored.status == "done" and stored.counts["done"] == 4
    assert np.isclose(stored.threshold, float(EVERYONE))


def test_a_killed_run_is_shown_failed_and_the_next_run_reuses_its_faces(home, tmp_path):
    """SIGKILL a real `verifier cluster` process part-way: the run reads as failed,
    the batches it committed are kept, and the rerun embeds only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sqlalchemy import func, select

    from jobs.cluster import load_run
    from storage.schema import FaceVector, JobRun

    home, db_url, sessions = home
    photos = flat(tmp_path / "unsorted", identities=10, per_identity=10)  # 100 photos, 4 batches
    env = dict(os.environ, VERIFIER_HOME=str(home), VERIFIER_DB_URL=db_url)
    # a slow forward pass, so that the kill lands between batches
    slow = ("import time, jobs.models as m; f = m.LoadedModel._forward\n"
            "m.LoadedModel._forward = lambda self, x: (time.sleep(1.0), f(self, x))[1]\n"
            "from jobs.cli import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", slow, "-q", "cluster", str(photos), "--threshold", EVERYONE],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with sessions() as s:
            stored = s.scalar(select(func.count(FaceVector.id)))
        if stored >= 32:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with sessions() as s:
        run_id = s.scalar(select(func.max(JobRun.number)).where(JobRun.kind == "cluster"))
        stored = s.scalar(select(func.count(FaceVector.id)))
    assert 32 <= stored < 100
    killed = load_run(sessions, run_id)
    assert killed.status == "failed" and "is gone" in killed.error
    shown = cli(home, db_url, "cluster", "show", str(run_id))
    assert "failed" in shown.output and "run the same command again" in shown.output
    again = json.loads(cli(home, db_url, "cluster", str(photos), "--threshold", EVERYONE, "--json").output)
    assert again["counts"]["reused"] == stored and again["counts"]["embedded"] == 100 - stored
    with sessions() as s:
        assert s.scalar(select(func.count(FaceVector.id))) == 100
