import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.evaluate import evaluate
from jobs.report import write_report
from storage import gallery, models
from storage.database import open_database
from storage.workspace import Workspace
from verifier import metrics
from verifier.synthetic import write_identity_set


@pytest.fixture
def pipeline_home(tmp_path, db_url):
    """A workspace after `verifier pipeline` on a small synthetic set (CLI, end to end),
    on SQLite and on PostgreSQL where reachable."""
    # 8 photos each: the open-set test split holds same-person pairs for every fold
    data = write_identity_set(tmp_path / "faces", identities=5, per_identity=8, size=32)
    home = tmp_path / "home"
    r = CliRunner().invoke(main, ["--home", str(home), "--db-url", db_url, "-q", "pipeline",
                                  "--data", str(data),
                                  "--backbone", "tiny", "--detector", "none", "--weights", "none", "--image-size", "32",
                                  "--epochs", "3", "--name", "m"])
    assert r.exit_code == 0, r.output
    assert "report:" in r.output and "roc_auc" in r.output and "tutorial 0.5" in r.output
    report = re.search(r"report: (\S+)", r.output).group(1)
    return home, data, report, db_url


def test_evaluation_scores_exactly_the_saved_test_pairs(pipeline_home):
    home, data, report, db_url = pipeline_home
    ws = Workspace.open(home)
    sessions = open_database(db_url)
    pairs = np.load(home / "models" / "m" / "pairs.npz")
    photos = json.loads((home / "models" / "m" / "photos.json").read_text())
    ev = evaluate(ws, sessions, model="m", folds=3)
    assert len(ev.distances) == len(pairs["test_first"])
    assert np.array_equal(ev.labels, pairs["test_label"])
    # distances equal those of the stored vectors, recomputed by hand
    with sessions() as s:
        model_id = models.get_model(s, "m").id
        _, vectors = gallery.model_vectors(s, model_id)
        by_path = {p.path: v for p, v in zip(
            [gallery.embedded_photos(s, model_id)[i] for i in gallery.model_ids(s, model_id)], vectors)}
    root = data.resolve()
    vec = np.stack([by_path[str(root / p["path"])] for p in photos])
    ref = np.linalg.norm(vec[pairs["test_first"]] - vec[pairs["test_second"]], axis=1)
    np.testing.assert_allclose(ev.distances, ref, rtol=1e-5)
    # the threshold is the one train calibrated on validation (at its target FAR),
    # stored with the model; evaluation reports at it
    config = json.loads((home / "models" / "m" / "config.json").read_text())
    vd = np.linalg.norm(vec[pairs["validation_first"]] - vec[pairs["validation_second"]], axis=1)
    expected, _ = metrics.calibrated_threshold(vd, pairs["validation_label"], config["target_far"])
    assert ev.threshold == pytest.approx(config["threshold"], rel=1e-6)
    assert ev.threshold == pytest.approx(expected, abs=1e-4)  # train's embeddings = the gallery's
    with sessions() as s:
        assert models.get_model(s, "m").threshold == pytest.approx(ev.threshold)
    assert ev.folds["folds"] == 3


def test_target_far_and_given_threshold(pipeline_home):
    home, _, _, db_url = pipeline_home
    ws = Workspace.open(home)
    sessions = open_database(db_url)
    with sessions() as s:
        calibrated = models.get_model(s, "m").threshold
    ev = evaluate(ws, sessions, target_far=0.05)
    assert ev.validation["far"] <= 0.05 and ev.threshold_rule.startswith("far<=0.05")
    given = evaluate(ws, sessions, threshold=0.123)
    assert given.threshold == 0.123 and given.validation is None
    with sessions() as s:  # neither overwrites the threshold calibrated at train time
        assert models.get_model(s, "m").threshold == pytest.approx(calibrated)


def test_reports(pipeline_home, tmp_path):
    home, _, html_path, db_url = pipeline_home
    sessions = open_database(db_url)
    pairs = np.load(home / "models" / "m" / "pairs.npz")
    n = len(pairs["test_first"])
    out = write_report(sessions, tmp_path / "r.csv", "csv")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == n
    assert set(rows[0]) == {"photo_a", "photo_b", "identity_a", "identity_b", "label", "distance",
                            "decision", "correct", "photo_in_training", "quality_a", "quality_b"}
    assert all((r["label"] == "1") == (r["identity_a"] == r["identity_b"]) for r in rows)
    # the open-set protocol keeps test photos out of training; every row says so
    assert {r["photo_in_training"] for r in rows} == {"0"}
    doc = json.loads(write_report(sessions, tmp_path / "r.json", "json").read_text())
    assert doc["model"]["name"] == "m" and "roc_auc" in doc["run"]["counts"]["metrics"]
    assert doc["run"]["counts"]["protocol"] == "open-set"
    assert doc["run"]["counts"]["overlap"]["pairs_with_a_training_photo"] == 0 and n > 0
    page = open(html_path, encoding="utf-8").read()
    assert page.count("data:image/png;base64,") >= 4 + 0
    for title in ("ROC curve", "DET curve", "distance histograms", "confusion matrix",
                  "Per identity", "Worst false accepts", "Worst false rejects"):
        assert title in page
    # self-contained: no external resource is referenced
    assert not re.search(r'(src|href)="(https?:)?//', page)
    r = CliRunner().invoke(main, ["--home", str(home), "--db-url", db_url, "report", "--format", "csv"])
    assert r.exit_code == 0 and "run" in r.output


def test_evaluate_cli_json_and_errors(pipeline_home, tmp_path):
    home, _, _, db_url = pipeline_home
    r = CliRunner().invoke(main, ["--home", str(home), "--db-url", db_url, "-q", "evaluate", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert set(doc["metrics"]) >= {"accuracy", "roc_auc", "eer", "confusion"}
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "empty"), "evaluate"])
    assert r.exit_code == 1 and "verifier train" in r.output
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "empty"), "report"])
    assert r.exit_code == 1 and "no evaluation yet" in r.output


def test_csv_cells_a_spreadsheet_would_run_are_quoted():
    from jobs.report import csv_text

    for formula in ("=HYPERLINK(\"http://evil\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_text(formula) == "'" + formula
    for plain in ("obama", "Zoë Ñ", "a=b", "", "0.5"):
        assert csv_text(plain) == plain


def test_removing_a_person_does_not_break_evaluation_and_embed_says_how_to_bring_them_back(pipeline_home):
    from jobs.embed import embed_gallery
    from jobs.live import Verifier

    home, data, _, db_url = pipeline_home
    ws = Workspace.open(home)
    sessions = open_database(db_url)
    before = evaluate(ws, sessions, model="m")
    person = sorted(p.name for p in data.iterdir())[0]
    assert Verifier.open(ws, sessions, "m").remove_identity(person).photos == 8
    after = evaluate(ws, sessions, model="m")  # the saved splits, whoever is enrolled
    np.testing.assert_allclose(after.distances, before.distances, rtol=1e-5, atol=1e-6)
    summary = embed_gallery(ws, sessions, data, model="m", quiet=True)
    assert summary.left_out == 8 and summary.added == 0
    assert any("--restore-removed" in line for line in summary.lines())
    summary = embed_gallery(ws, sessions, data, model="m", quiet=True, restore_removed=True)
    assert summary.restored == 8 and summary.added == 8
    with sessions() as s:
        assert len(gallery.photos_of(s, person)) == 8
    r = CliRunner().invoke(main, ["--home", str(home), "--db-url", db_url, "embed", "--data", str(data)])
    assert r.exit_code == 0 and "0 added" in r.output and "removed from the gallery" not in r.output
