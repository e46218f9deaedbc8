"""Benchmarks' pair lists (LFW format, CSV) scored end to end, and the overlap warning."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from jobs.cli import main
from jobs.evaluate import evaluate, evaluate_pairs, overlap_warning
from jobs.report import write_report
from storage import evaluations
from storage.database import open_database
from storage.workspace import Workspace
from verifier.synthetic import pattern_image, write_identity_set

NAMES = ("Ana_Silva", "Bo_Li", "Cy_Zoë")


@pytest.fixture
def lfw_folder(tmp_path):
    """An LFW-shaped folder: NAME/NAME_000n.jpg, three people, three photos each."""
    rng = np.random.default_rng(4)
    for k, name in enumerate(NAMES):
        (tmp_path / "lfw" / name).mkdir(parents=True)
        for n in (1, 2, 3):
            Image.fromarray(pattern_image(k, rng, 32)).save(tmp_path / "lfw" / name / f"{name}_{n:04d}.jpg")
    return tmp_path / "lfw"


PAIRS = """2\t2
Ana_Silva\t1\t2
Bo_Li\t1\t3
Ana_Silva\t1\tBo_Li\t2
Cy_Zoë\t1\tAna_Silva\t2
Cy_Zoë\t2\t3
Bo_Li\t2\t9
Bo_Li\t1\tCy_Zoë\t1
Ana_Silva\t3\tCy_Zoë\t3
"""


@pytest.fixture
def pairs(tmp_path):
    """LFW's pairs.txt format: the PAIRS above, in a file."""
    path = tmp_path / "pairs.txt"
    path.write_text(PAIRS, "utf-8")
    return path


def test_lfw_list_scored_with_its_folds_and_missing_photos_listed(home_with_model, lfw_folder, pairs,
                                                                   tmp_path):
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    ev = evaluate_pairs(ws, sessions, pairs, lfw_folder, model="tiny")
    assert ev.split == "external" and ev.metrics["pairs"] == 7  # Bo_Li_0009 does not exist
    assert ev.unscored == [{"line": 7, "a": "Bo_Li/Bo_Li_0002.jpg", "b": "Bo_Li/Bo_Li_0009.jpg",
                            "reason": "Bo_Li/Bo_Li_0009.jpg: missing"}]
    assert ev.folds["folds"] == 2 and len(ev.folds["per_fold"]) == 2
    assert ev.overlap["photos_in_training"] == 0  # none of these photos trained the model
    # the threshold train calibrated on the model's own validation photos
    config = json.loads((home_with_model / "models" / "tiny" / "config.json").read_text())
    assert ev.threshold_rule == "calibrated on the model's validation split"
    assert ev.threshold == pytest.approx(config["threshold"])
    with sessions() as s:
        assert len(evaluations.scored_pairs(s, evaluations.evaluation_run(s, ev.run).id)) == 7
    out = write_report(sessions, tmp_path / "r.json", "json", ev.run)
    doc = json.loads(out.read_text())
    assert doc["run"]["counts"]["listed"] == 8 and len(doc["run"]["counts"]["unscored"]) == 1
    html = write_report(sessions, tmp_path / "r.html", "html", ev.run).read_text()
    assert "external lfw list, 2 folds from the file" in html and "1 of 8 listed pairs" in html
    # the same through the CLI, with the table
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "-q", "evaluate", "--pairs",
                                  str(pairs), "--data", str(lfw_folder)])
    assert r.exit_code == 0, r.output
    assert "2-fold accuracy" in r.output and "1 listed pairs not scored" in r.output
    assert "line 7" in r.output


def test_csv_list_with_spaces_and_unicode(home_with_model, tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "photos"
    for name in ("Zoë Ñ", "Bo"):
        (folder / name).mkdir(parents=True)
        for n in range(2):
            Image.fromarray(pattern_image(len(name), rng, 32)).save(folder / name / f"photo {n}.png")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text('a,b,label\n"Zoë Ñ/photo 0.png","Zoë Ñ/photo 1.png",1\n'
                        '"Zoë Ñ/photo 0.png",Bo/photo 1.png,0\nBo/photo 0.png,Bo/photo 1.png,1\n', "utf-8")
    ws = Workspace.open(home_with_model)
    ev = evaluate_pairs(ws, open_database(ws.database_url), csv_path, folder, model="tiny", folds=None)
    assert ev.metrics["pairs"] == 3 and not ev.unscored and ev.folds is None


def test_overlap_warning_for_the_seed_protocol_not_for_identity_disjoint(tmp_path):
    data = write_identity_set(tmp_path / "faces", identities=20, per_identity=3, size=32)
    home = tmp_path / "home"
    for protocol in ("seed", "identity-disjoint"):
        r = CliRunner().invoke(main, ["--home", str(home), "-q", "train", "--data", str(data),
                                      "--backbone", "tiny", "--detector", "none", "--image-size",
                                      "32", "--epochs", "1", "--protocol", protocol, "--name", protocol])
        assert r.exit_code == 0, r.output
    ws = Workspace.open(home)
    sessions = open_database(ws.database_url)
    seed = evaluate(ws, sessions, model="seed")
    o = seed.overlap
    # the seed protocol: test pairs are drawn from the photos training uses
    assert o["photos_in_training"] == o["photos"] > 0 and o["pairs_with_a_training_photo"] == o["pairs"]
    assert o["identities_in_training"] == o["identities"] > 1
    assert f"{o['pairs']} of {o['pairs']} pairs contain a photo the model was trained on" \
        in overlap_warning(o)
    html = write_report(sessions, tmp_path / "s.html", "html", seed.run).read_text()
    assert "Read with care" in html and "Protocol: <b>seed</b>" in html
    disjoint = evaluate(ws, sessions, model="identity-disjoint")
    assert disjoint.overlap["photos_in_training"] == 0
    assert disjoint.overlap["identities_in_training"] == 0
    assert overlap_warning(disjoint.overlap) is None
    html = write_report(sessions, tmp_path / "d.html", "html", disjoint.run).read_text()
    assert "Read with care" not in html


def test_comparison_report_of_two_runs(home_with_model, lfw_folder, pairs, tmp_path):
    from jobs.comparison import write_comparison

    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    a = evaluate_pairs(ws, sessions, pairs, lfw_folder, model="tiny")
    b = evaluate_pairs(ws, sessions, pairs, lfw_folder, model="tiny", threshold=0.1)
    other = evaluate(ws, sessions, model="tiny", split="validation")
    page = write_comparison(sessions, tmp_path / "c.html", "html", [a.run, b.run]).read_text()
    assert "All runs scored the same 7 pairs." in page
    assert page.count("<img alt=\"ROC curves") == 1 and page.count("<img alt=\"DET curves") == 1
    assert f"run {a.run}: tiny" in page and f"run {b.run}: tiny" in page
    doc = json.loads(write_comparison(sessions, tmp_path / "c.json", "json",
                                      [a.run, b.run, other.run]).read_text())
    assert not doc["same_pairs"] and "different pairs" in doc["note"]
    assert [r["run"] for r in doc["runs"]] == [a.run, b.run, other.run]
    assert doc["runs"][1]["threshold"] == 0.1 and doc["runs"][0]["roc_auc"] == doc["runs"][1]["roc_auc"]
    rows = (tmp_path / "c.csv")
    write_comparison(sessions, rows, "csv", [a.run, b.run])
    assert rows.read_text().splitlines()[0].startswith("run,model,backbone,protocol")
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "report", str(a.run),
                                  str(b.run), "--out", str(tmp_path / "cli.html")])
    assert r.exit_code == 0 and (tmp_path / "cli.html").is_file()


def test_a_model_without_a_threshold_is_scored_at_the_best_on_the_list(home_with_model, lfw_folder,
                                                                        pairs):
    config_path = home_with_model / "models" / "tiny" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("threshold"), config.pop("threshold_rule")
    config_path.write_text(json.dumps(config))
    ws = Workspace.open(home_with_model)
    ev = evaluate_pairs(ws, open_database(ws.database_url), pairs, lfw_folder, model="tiny")
    assert ev.threshold_rule == "best on these pairs (optimistic)"
