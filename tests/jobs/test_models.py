"""A loaded model's embedding, with and without test-time flip averaging."""
import json

import numpy as np
from click.testing import CliRunner

from jobs.cli import main
from jobs.models import load_model
from storage.workspace import Workspace


def test_flip_tta_averages_the_face_and_its_mirror(home_with_model):
    ws = Workspace.open(home_with_model)
    plain = load_model(ws, "tiny")
    path = home_with_model / "models" / "tiny" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tta": "flip"}))
    flipped = load_model(ws, "tiny")
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    expected = (plain.embed(x) + plain.embed(x[:, :, ::-1])) / 2
    np.testing.assert_allclose(flipped.embed(x), expected, rtol=1e-5, atol=1e-6)
    assert flipped.calls == 1  # face and mirror in one batch


def test_tta_is_recorded_by_train(tmp_path, synthetic_faces):
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "-q", "train", "--data",
                                  str(synthetic_faces), "--backbone", "tiny", "--detector", "none",
                                  "--epochs", "1", "--tta", "flip", "--name", "t"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "h" / "models" / "t" / "config.json").read_text())["tta"] == "flip"
