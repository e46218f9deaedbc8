import http.server
import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main


def invoke(home, *args):
    return CliRunner().invoke(main, ["--home", str(home), "-q", *args], catch_exceptions=False)


def test_every_command_has_help():
    runner = CliRunner()
    for name, command in main.commands.items():
        assert command.help and len(command.help) > 40, name
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, name


def test_train_saves_a_complete_model_version(tmp_path, synthetic_faces):
    home = tmp_path / "home"
    r = invoke(home, "train", "--data", str(synthetic_faces), "--backbone", "tiny", "--detector", "none",
               "--weights", "none", "--image-size", "32", "--epochs", "2", "--name", "t1",
               "--protocol", "image-disjoint")
    assert r.exit_code == 0, r.output
    assert "epoch 2/2" in r.output and "val_loss" in r.output
    assert "36 photos of 6 identities" in r.output
    folder = home / "models" / "t1"
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == "tiny" and config["protocol"] == "image-disjoint"
    assert config["image_size"] == 32 and config["preprocessing"] == "unit"
    history = json.loads((folder / "history.json").read_text())
    assert len(history["loss"]) == 2
    pairs = np.load(folder / "pairs.npz")
    assert len(pairs["test_first"]) == config["pair_counts"]["test"]["pairs"]
    photos = json.loads((folder / "photos.json").read_text())
    assert len(photos) == 36

    import keras

    import verifier.layers  # noqa: F401  (registers the custom layer)
    model = keras.models.load_model(folder / "branch.keras")
    assert model.output.shape[-1] == 64
    # the same name twice is refused, not overwritten
    r = CliRunner().invoke(main, ["--home", str(home), "-q", "train", "--data", str(synthetic_faces),
                                  "--backbone", "tiny", "--detector", "none", "--weights", "none", "--name", "t1"])
    assert r.exit_code == 1 and "already exists" in r.output


def test_train_json_output(tmp_path, synthetic_faces):
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "-q", "train", "--data",
                                  str(synthetic_faces), "--backbone", "tiny", "--detector", "none", "--weights", "none",
                                  "--image-size", "32", "--epochs", "1", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["pair_counts"]["train"]["pairs"] > 0 and len(doc["history"]["loss"]) == 1


def test_user_mistakes_are_one_line_errors(tmp_path, synthetic_faces):
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "train", "--data",
                                  str(synthetic_faces), "--backbone", "tiny", "--detector", "none",
                                  "--weights", str(tmp_path / "nope.h5")])
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "train", "--data", str(empty)])
    assert r.exit_code == 1 and "no usable photo" in r.output


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_imagenet_download_failure_names_file_cache_and_alternative(tmp_path, monkeypatch,
                                                                    synthetic_faces):
    """Keras' download is pointed at a local server that answers 404."""
    import keras.src.applications.vgg19 as vgg19_module
    import keras.src.backend.config as keras_config

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(vgg19_module, "WEIGHTS_PATH_NO_TOP",
                            f"http://127.0.0.1:{server.server_address[1]}/vgg19_notop.h5")
        monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))
        r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "train", "--data",
                                      str(synthetic_faces), "--image-size", "32",
                                      "--detector", "none"])
    finally:
        server.shutdown()
    assert r.exit_code == 1
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in r.output
    assert str(tmp_path / "keras" / "models") in r.output
    assert "--weights PATH" in r.output and "Traceback" not in r.output


@pytest.mark.integration
def test_train_on_seed_faces(tmp_path, seed_faces):
    r = invoke(tmp_path / "home", "train", "--data", str(seed_faces), "--backbone", "tiny", "--detector", "none",
               "--weights", "none", "--epochs", "2", "--name", "seed", "--protocol", "seed")
    assert r.exit_code == 0, r.output
    assert "128 photos of 16 identities" in r.output
    assert "5689 pairs" in r.output and "1625 pairs" in r.output and "814 pairs" in r.output
    assert (tmp_path / "home" / "models" / "seed" / "branch.keras").is_file()


@pytest.mark.parametrize("where", ["fit", "save"])
def test_ctrl_c_leaves_no_half_written_model(tmp_path, synthetic_faces, monkeypatch, where):
    import keras

    from verifier.trainer import FastTrainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "fit":
        monkeypatch.setattr(FastTrainer, "fit", interrupt)
    else:
        monkeypatch.setattr(keras.Model, "save", interrupt)
    home = tmp_path / "home"
    r = CliRunner().invoke(main, ["--home", str(home), "-q", "train", "--data", str(synthetic_faces),
                                  "--backbone", "tiny", "--detector", "none", "--image-size", "32",
                                  "--epochs", "1", "--name", "x"])
    assert r.exit_code == 130 and "interrupted" in r.output
    assert list((home / "models").iterdir()) == []


def test_require_face_without_faces_is_a_clear_error(tmp_path):
    from verifier.synthetic import write_identity_set

    data = write_identity_set(tmp_path / "stripes", identities=2, per_identity=2, size=64)
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "-q", "train", "--data", str(data),
                                  "--backbone", "tiny", "--require-face"])
    assert r.exit_code == 1 and "--require-face" in r.output and "Traceback" not in r.output


def test_flip_augmentation(tmp_path, synthetic_faces):
    home = tmp_path / "home"
    r = invoke(home, "train", "--data", str(synthetic_faces), "--backbone", "tiny", "--detector", "none",
               "--image-size", "32", "--epochs", "2", "--augment", "flip", "--name", "aug")
    assert r.exit_code == 0, r.output
    assert json.loads((home / "models" / "aug" / "config.json").read_text())["augment"] == "flip"


def _adapter_weights(home, name):
    import keras

    import verifier.layers  # noqa: F401  (registers the project's layers)

    model = keras.models.load_model(home / "models" / name / "branch.keras")
    return model.get_layer("head").get_layer("embedding").get_weights()


@pytest.mark.parametrize("keep", [False, True])
def test_a_model_that_is_not_better_is_not_saved_unless_asked(tmp_path, synthetic_faces,
                                                                monkeypatch, keep):
    """Training that does not beat the starting network saves the starting network
    (its weights as built), with the validation figures of both and a threshold."""
    import json

    import jobs.selection

    monkeypatch.setattr(jobs.selection, "is_better", lambda trained, start: False)
    home = tmp_path / "home"
    args = ["--home", str(home), "train", "--data", str(synthetic_faces), "--backbone", "tiny",
            "--detector", "none", "--image-size", "32", "--epochs", "2", "--name", "m",
            "--embedding-dim", "8", "--target-far", "0.05"] + (["--keep-trained"] if keep else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "starting network" in r.output and "NOT better" in r.output
    config = json.loads((home / "models" / "m" / "config.json").read_text())
    assert config["selection"]["kept"] == ("trained" if keep else "start")
    assert config["selection"]["trained"]["eer"] is not None
    assert config["threshold"] > 0 and "train validation" in config["threshold_rule"]
    # the starting network is the branch as built with the same seed
    import keras

    from verifier.network import build_branch

    keras.utils.set_random_seed(0)
    built = build_branch("tiny", weights="none", image_size=32, embedding_dim=8, head="dense")
    same = all(np.array_equal(a, b) for a, b in zip(
        built.head.get_layer("embedding").get_weights(), _adapter_weights(home, "m")))
    assert same is (not keep)


def test_train_calibrates_the_threshold_that_query_uses(tmp_path, synthetic_faces):
    """After train and embed, query names people without an evaluate run, at the
    threshold train printed; evaluate reports at it and leaves it alone."""
    home = tmp_path / "home"
    base = ["--home", str(home)]
    r = CliRunner().invoke(main, base + ["train", "--data", str(synthetic_faces), "--backbone", "tiny",
                                         "--detector", "none", "--image-size", "32", "--epochs", "2",
                                         "--name", "m", "--target-far", "0.05"])
    assert r.exit_code == 0, r.output
    import re

    printed = float(re.search(r"threshold ([0-9.]+) for a false-accept rate", r.output).group(1))
    assert "false-accept rate of 0.05" in r.output
    assert CliRunner().invoke(main, base + ["embed", "--data", str(synthetic_faces)]).exit_code == 0
    photo = next(synthetic_faces.glob("*/*.png"))
    q = CliRunner().invoke(main, base + ["query", str(photo), "--json"])
    assert q.exit_code == 0, q.output
    assert json.loads(q.output)["results"][0]["matches"][0]["passes"] is True
    ev = CliRunner().invoke(main, base + ["evaluate", "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["threshold"] == pytest.approx(printed, abs=1e-4)
    again = CliRunner().invoke(main, base + ["evaluate", "--json", "--target-far", "0.5"])
    assert json.loads(again.output)["threshold"] != pytest.approx(printed, abs=1e-4)
    ev = CliRunner().invoke(main, base + ["evaluate", "--json"])
    assert json.loads(ev.output)["threshold"] == pytest.approx(printed, abs=1e-4)


def test_photo_views_degrade_every_version_once_and_mirror_its_own(tmp_path, synthetic_faces):
    """Without a detector (or where it no longer finds the face) each degradation is
    applied to the aligned input; a ``+flip`` version is its own degradation mirrored,
    and the same seed gives the same pixels."""
    from jobs.train import TrainOptions, _photo_views, view_names
    from verifier.preparation import PhotoPreparer

    names = view_names(TrainOptions(data=synthetic_faces, augment="degrade", tta="flip"))
    assert names[:2] == ["clean", "flip"] and "gaussian_blur+flip" in names and len(names) == 16
    photo = sorted(synthetic_faces.rglob("*.png"))[0]
    preparer = PhotoPreparer(32, "none")
    views = _photo_views(preparer, photo, names, 0, 3, 0.25)
    assert len(views) == 16 and all(v.shape == (32, 32, 3) for v in views)
    by = dict(zip(names, views))
    np.testing.assert_array_equal(by["flip"], by["clean"][:, ::-1])
    np.testing.assert_array_equal(by["motion_blur+flip"], by["motion_blur"][:, ::-1])
    assert not np.array_equal(by["gaussian_blur"], by["clean"])
    again = _photo_views(preparer, photo, names, 0, 3, 0.25)
    assert all(np.array_equal(a, b) for a, b in zip(views, again))
