"""Inference never loads TensorFlow: every command that embeds, searches, verifies,
evaluates, detects or serves runs in a fresh process on ONNX Runtime, and answers
what the Keras path answers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


from verifier.synthetic import write_identity_set

pytestmark = pytest.mark.integration

RUN = """
import json, sys
from jobs.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps({m: m in sys.modules for m in ("tensorflow", "keras", "mtcnn")}))
"""

SERVE = """
import json, sys
from fastapi.testclient import TestClient
from jobs.api import Settings, create_app
from storage.database import open_database
from storage.workspace import Workspace
ws = Workspace.open(sys.argv[1])
with TestClient(create_app(ws, open_database(ws.database_url), Settings(auth=False))) as c:
    r = c.post("/v1/search", files={"photo": ("p.png", open(sys.argv[2], "rb").read())})
    assert r.status_code == 200, r.text
    r = c.post("/v1/detect", files={"photo": ("p.png", open(sys.argv[2], "rb").read())})
    assert r.status_code == 200, r.text
print(json.dumps({m: m in sys.modules for m in ("tensorflow", "keras", "mtcnn")}))
"""

RAY_WORKER = """
import json, sys
import numpy as np
from jobs.engines.ray import Embedder
rows, vectors = Embedder(sys.argv[1], "tiny", 1).embed([(1, sys.argv[2])])
assert vectors.shape == (1, 64) and rows[0].reason is None, rows
print(json.dumps({m: m in sys.modules for m in ("tensorflow", "keras", "mtcnn")}))
"""
"""What a Ray worker runs: the actor that loads the model and embeds a batch."""


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A trained tiny model (its branch exported by train) with an embedded gallery,
    and MTCNN's networks translated into a cache the child processes share."""
    from jobs.train import TrainOptions, train
    from storage.database import open_database
    from storage.workspace import Workspace
    from verifier.mtcnn_pipeline import MTCNNPipeline, cache_dir

    base = tmp_path_factory.mktemp("notf")
    data = write_identity_set(base / "faces", identities=4, per_identity=4, size=48)
    ws = Workspace.open(base / "home")
    sessions = open_database(ws.database_url)
    # no detector: the synthetic photos have no face, and answers need matches to compare;
    # MTCNN runs in `detect` and POST /v1/detect
    train(ws, TrainOptions(data=data, backbone="tiny", weights="none", image_size=32, epochs=1,
                           detector="none", name="tiny"), quiet=True, echo=lambda s: None,
          database=sessions)
    sessions.kw["bind"].dispose()  # not embedded: `evaluate` embeds the photos it scores
    MTCNNPipeline.cached(folder=cache_dir(base / "cache"))
    return base


def run(home: Path, *args: str, script: str = RUN, engine: str | None = None) -> tuple[dict, str]:
    env = dict(os.environ) | {"VERIFIER_HOME": str(home / "home"),
                          "VERIFIER_CACHE": str(home / "cache")}
    if engine:
        env["VERIFIER_ENGINE"] = engine
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def test_cached_mtcnn_is_what_the_package_computes(home):
    """The cached networks give the package's detections; a second load reads the
    files (no translation, no TensorFlow needed)."""
    from mtcnn import MTCNN

    from verifier.mtcnn_pipeline import MTCNNPipeline, cache_dir

    folder = cache_dir(home / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]
    cached = MTCNNPipeline.cached(folder=folder)
    package = MTCNN()
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (120, 140, 3), dtype=np.uint8)
    low = {"threshold_pnet": 0.3, "threshold_rnet": 0.1, "threshold_onet": 0.1}
    assert cached.detect(image, **low) == package.detect_faces(image, **low)


def test_inference_commands_never_import_tensorflow(home, tmp_path):
    """In this order: evaluate embeds the gallery first (the photos it scores)."""
    photo = next((home / "faces").rglob("*.png"))
    other = sorted((home / "faces").rglob("*.png"))[-1]
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 80, 3), dtype=np.uint8)).save(face)
    for args in (["evaluate", "--threshold", "0.5"],  # embeds the photos first
                 ["embed", "--data", str(home / "faces")],
                 ["query", str(photo), "-k", "2", "--json"],
                 ["verify", str(photo), str(other), "--threshold", "1"],
                 ["detect", str(face)]):
        loaded, out = run(home, *args)
        assert loaded == {"tensorflow": False, "keras": False, "mtcnn": False}, (args, loaded)
    loaded, _ = run(home, str(home / "home"), str(photo), script=RAY_WORKER)
    assert loaded == {"tensorflow": False, "keras": False, "mtcnn": False}
    _, answer = run(home, "query", str(photo), "-k", "2", "--json")
    assert json.loads(answer)["results"][0]["matches"]  # answered, not only started
    loaded, _ = run(home, str(home / "home"), str(photo), script=SERVE)
    assert loaded == {"tensorflow": False, "keras": False, "mtcnn": False}


def test_onnx_answers_what_keras_answers(home):
    run(home, "embed", "--data", str(home / "faces"))  # unchanged when an earlier test did it
    photo = next((home / "faces").rglob("*.png"))
    onnx_loaded, onnx_out = run(home, "query", str(photo), "-k", "3", "--json")
    keras_loaded, keras_out = run(home, "query", str(photo), "-k", "3", "--json", engine="keras")
    assert keras_loaded["tensorflow"] and not onnx_loaded["tensorflow"]
    a = json.loads(onnx_out)["results"][0]["matches"]
    b = json.loads(keras_out)["results"][0]["matches"]
    assert [m["identity"] for m in a] == [m["identity"] for m in b]
    np.testing.assert_allclose([m["distance"] for m in a], [m["distance"] for m in b], atol=1e-5)


def test_a_version_saved_before_exports_is_exported_once(home, tmp_path):
    """Without branch.onnx (a version saved by an older release) the first use
    exports it; the next process runs without TensorFlow."""
    run(home, "embed", "--data", str(home / "faces"))
    copy = tmp_path / "copy"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("cache"))
    shutil.copytree(home / "cache", copy / "cache")
    onnx = copy / "home" / "models" / "tiny" / "branch.onnx"
    onnx.unlink()
    photo = next((copy / "faces").rglob("*.png"))
    loaded, _ = run(copy, "query", str(photo), "--json")
    assert loaded["tensorflow"] and onnx.is_file()
    loaded, _ = run(copy, "query", str(photo), "--json")
    assert not loaded["tensorflow"]


def test_a_read_only_model_folder_exports_into_the_cache(home, tmp_path, monkeypatch):
    """A model folder that cannot be written (a shared read-only volume): the export
    goes to HOME/cache/onnx/ and is found there next time."""
    from jobs.models import ensure_onnx
    from storage.workspace import Workspace

    copy = tmp_path / "home"
    shutil.copytree(home / "home", copy)
    ws = Workspace.open(copy)
    (ws.model_dir("tiny") / "branch.onnx").unlink()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ws.model_dir("tiny")
                        else real(p, mode))
    path = ensure_onnx(ws, "tiny")
    assert path == ws.cache_dir / "onnx" / "tiny.onnx" and path.is_file()
    assert not (ws.model_dir("tiny") / "branch.onnx").exists()
    assert ensure_onnx(ws, "tiny") == path
