import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from jobs.cli import main
from jobs.embed import embed_gallery
from storage import models
from storage.database import open_database
from storage.workspace import Workspace
from verifier.synthetic import pattern_image, write_identity_set


def _set_threshold(home, value):
    sessions = open_database(Workspace.open(home).database_url)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = value


@pytest.fixture
def embedded(home_with_model, tmp_path):
    data = write_identity_set(tmp_path / "gallery", identities=4, per_identity=3, size=32, seed=5)
    ws = Workspace.open(home_with_model)
    embed_gallery(ws, open_database(ws.database_url), data, model="tiny", quiet=True)
    _set_threshold(home_with_model, 0.5)
    return home_with_model, data


def run(home, *args, input=None):
    return CliRunner().invoke(main, ["--home", str(home), "-q", *args], input=input)


def test_query_names_the_person_first_and_json_matches_table(embedded, tmp_path):
    home, data = embedded
    probe = tmp_path / "probe.png"
    shutil.copy(data / "person_02" / "img_01.png", probe)
    r = run(home, "query", str(probe), "-k", "3")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"{probe}: person_02"
    assert lines[2].split()[:2] == ["1", "person_02"]
    assert len([ln for ln in lines if ln.strip()[:1].isdigit()]) == 3
    doc = json.loads(run(home, "query", str(probe), "-k", "3", "--json").output)
    res = doc["results"][0]
    assert not res["unknown"] and res["matches"][0]["identity"] == "person_02"
    assert res["matches"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    table = [(ln.split()[1], float(ln.split()[2])) for ln in lines[2:]]
    assert table == [(m["identity"], pytest.approx(m["distance"], abs=1e-4)) for m in res["matches"]]
    assert [m["rank"] for m in res["matches"]] == [1, 2, 3]


def test_unknown_when_threshold_excludes_everyone(embedded, tmp_path):
    home, _ = embedded
    _set_threshold(home, 1e-9)
    probe = tmp_path / "new.png"
    Image.fromarray(pattern_image(1, np.random.default_rng(99), 32)).save(probe)
    r = run(home, "query", str(probe))
    assert r.exit_code == 0 and r.output.startswith(f"{probe}: unknown")
    assert "person_" in r.output  # the nearest are still listed


def test_many_photos_folder_csv_stdin_and_errors(embedded, tmp_path):
    home, data = embedded
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    out_csv = tmp_path / "q.csv"
    r = run(home, "query", str(data / "person_00"), str(bad), "-k", "2", "--csv", str(out_csv), "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert len(doc["results"]) == 4
    assert doc["results"][-1]["error"] and "not_an_image" in doc["results"][-1]["error"]
    rows = out_csv.read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 + 1
    stdin_bytes = (data / "person_03" / "img_00.png").read_bytes()
    r = run(home, "query", "-", "--json", input=stdin_bytes)
    assert r.exit_code == 0
    assert json.loads(r.output)["results"][0]["matches"][0]["identity"] == "person_03"


def test_query_without_gallery(home_with_model, tmp_path):
    probe = tmp_path / "p.png"
    Image.fromarray(pattern_image(0, np.random.default_rng(0), 32)).save(probe)
    r = run(home_with_model, "query", str(probe))
    assert r.exit_code == 1 and "never embedded" in r.output and "verifier embed" in r.output


def test_verify_exit_statuses(embedded, tmp_path):
    home, data = embedded
    a = str(data / "person_01" / "img_00.png")
    b = str(data / "person_02" / "img_00.png")
    r = run(home, "verify", a, a)
    assert r.exit_code == 0 and r.output.startswith("same")
    r = run(home, "verify", a, b, "--threshold", "0")
    assert r.exit_code == 1 and r.output.startswith("different")
    r = run(home, "verify", a, "-", "--json", input=open(a, "rb").read())
    assert r.exit_code == 0 and json.loads(r.output)["same"] is True
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    r = run(home, "verify", a, str(bad))
    assert r.exit_code == 2 and "empty" in r.output
    _set_threshold(home, None)
    r = run(home, "verify", a, b)
    assert r.exit_code == 2 and "verifier evaluate" in r.output
    assert "Exit status" in CliRunner().invoke(main, ["verify", "--help"]).output


def test_approximate_index_through_the_cli(home_with_model, tmp_path):
    data = write_identity_set(tmp_path / "g", identities=3, per_identity=3, size=32, seed=2)
    r = run(home_with_model, "embed", "--data", str(data), "--index-factory", "HNSW32")
    assert r.exit_code == 0, r.output
    side = json.loads((home_with_model / "indexes" / "tiny.faiss.json").read_text())
    assert side["factory"] == "HNSW32" and side["count"] == 9
    _set_threshold(home_with_model, 0.5)
    r = run(home_with_model, "query", str(data / "person_01" / "img_02.png"), "--json")
    match = json.loads(r.output)["results"][0]["matches"][0]
    assert match["identity"] == "person_01" and match["distance"] == pytest.approx(0, abs=1e-3)
    r = run(home_with_model, "embed", "--data", str(data), "--index-factory", "IVF4096,Flat")
    assert r.exit_code == 1 and "at least 4096 vectors" in r.output
    r = run(home_with_model, "doctor")
    assert r.exit_code == 0  # the refused rebuild left the previous index intact
