"""Every face of a photo: `verifier detect` and ``POST /v1/detect``."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from jobs.cli import main
from storage.facecache import FaceCache
from verifier.detection import detect_faces
from verifier.model_config import ModelConfig
from verifier.synthetic import pattern_image


@pytest.fixture(scope="module")
def group_photo(tmp_path_factory) -> bytes:
    """Two seed people side by side, the left one larger: a group photo."""
    from tests.conftest import SEED_FACES

    if not SEED_FACES.is_dir():
        pytest.skip(f"{SEED_FACES} is absent")
    left = Image.open(sorted((SEED_FACES / "brad_pitt").iterdir())[0]).convert("RGB").resize((400, 400))
    right = Image.open(sorted((SEED_FACES / "angelababy").iterdir())[0]).convert("RGB").resize((260, 260))
    canvas = Image.new("RGB", (720, 420), (90, 90, 90))
    canvas.paste(left, (10, 10))
    canvas.paste(right, (440, 80))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def test_every_face_largest_first_with_chips(group_photo):
    found = detect_faces(group_photo, "group.png", chip_size=150)
    assert (found.width, found.height) == (720, 420) and len(found.faces) == 2
    big, small = found.faces
    assert big.box[0] < 410 and small.box[0] >= 440  # the left face is the larger one
    assert big.box[2] * big.box[3] > small.box[2] * small.box[3]
    assert all(f.score > 0.9 and set(f.landmarks) == {"left_eye", "right_eye", "nose",
                                                      "mouth_left", "mouth_right"} for f in found.faces)
    assert all(f.chip.shape == (150, 150, 3) for f in found.faces)
    assert len(detect_faces(group_photo, max_faces=1).faces) == 1


def test_boxes_are_in_the_photo_as_displayed(group_photo):
    shown = Image.open(io.BytesIO(group_photo))
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways saves it
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate 90 degrees clockwise
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    upright, rotated = detect_faces(group_photo), detect_faces(buf.getvalue())
    assert (rotated.width, rotated.height) == (720, 420)
    for a, b in zip(upright.faces, rotated.faces):
        assert np.abs(np.subtract(a.box, b.box)).max() <= 8


def test_a_photo_without_faces_has_none():
    buf = io.BytesIO()
    Image.fromarray(pattern_image(0, np.random.default_rng(0), 96)).save(buf, "PNG")
    assert detect_faces(buf.getvalue()).faces == []


def test_cli_detect(group_photo, tmp_path):
    photo, junk = tmp_path / "group.png", tmp_path / "notes.png"
    photo.write_bytes(group_photo)
    junk.write_bytes(b"not a photo")
    r = CliRunner().invoke(main, ["detect", str(photo), str(junk), "--json", "--chips",
                                  str(tmp_path / "chips")])
    assert r.exit_code == 1  # one photo could not be read; the other is answered
    results = json.loads(r.stdout)["results"]
    assert len(results[0]["faces"]) == 2 and results[0]["faces"][0]["box"][2] > 100
    assert "not_an_image" in results[1]["error"]
    assert sorted(p.name for p in (tmp_path / "chips").iterdir()) == [
        "photo0001-face00.png", "photo0001-face01.png"]
    r = CliRunner().invoke(main, ["detect", str(photo)])
    assert r.exit_code == 0 and "2 faces (720x420)" in r.output and "face 1: left " in r.output


def test_http_detect(group_photo, home_with_model, tmp_path):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app
    from storage.database import open_database
    from storage.workspace import Workspace

    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    with TestClient(create_app(ws, sessions, Settings(model="tiny", auth=False))) as c:
        r = c.post("/v1/detect", files={"photo": ("g.png", group_photo)}, data={"chips": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["faces"]) == 2 and body["faces"][0]["chip"].startswith("data:image/jpeg")
        r = c.post("/v1/detect", files={"photo": ("g.png", group_photo)}, data={"max_faces": "1"})
        assert len(r.json()["faces"]) == 1 and r.json()["faces"][0]["chip"] is None
        assert c.post("/v1/detect", files={"photo": ("x", b"junk")}).status_code == 415
    assert not ws.enrolled_dir.exists()  # nothing stored
    sessions.kw["bind"].dispose()


def test_a_models_detector_sets_the_smallest_face_and_its_own_cache(tmp_path):
    """The detector recorded in a model is the one its preparer runs (its smallest
    face), with detections cached apart from the other detectors'."""
    from verifier.preparation import PhotoPreparer

    from verifier.defaults import DEFAULT_DETECTOR, DETECTOR_SETTINGS
    from verifier.faces import YuNetDetector

    for name, smallest in (("mtcnn", 20), ("mtcnn-30px", 30), ("mtcnn-fast", 20 / 0.709)):
        prep = PhotoPreparer.for_config(ModelConfig.parse({"image_size": 150, "detector": name}), FaceCache(tmp_path, name))
        assert prep.face_detector.min_face_size == smallest
        assert prep.face_detector.settings == {k: v for k, v in DETECTOR_SETTINGS[name].items()
                                               if k != "min_face_size"}
        assert prep.cache.folder == tmp_path / name
    prep = PhotoPreparer.for_config(ModelConfig.parse({"image_size": 150, "detector": "yunet"}), FaceCache(tmp_path, "yunet"))
    assert isinstance(prep.face_detector, YuNetDetector) and prep.cache.folder == tmp_path / "yunet"
    none = PhotoPreparer.for_config(ModelConfig.parse({"image_size": 150}), None)
    assert none.cache is None  # detect's default detector
    assert type(none.face_detector) is type(PhotoPreparer.for_config(
        ModelConfig.parse({"image_size": 150, "detector": DEFAULT_DETECTOR}), None).face_detector)


def test_a_changed_detectors_faces_are_cached_apart_from_its_old_ones(home_with_model):
    """``yunet``'s landmarks changed after its release (revision 2): a model using it
    caches and reads detections under ``yunet.2``, so a photo cached with the old
    landmarks is detected again; a detector never changed keeps its own name."""
    from jobs.models import load_model
    from storage.workspace import Workspace
    from verifier.faces import cache_name

    ws = Workspace.open(home_with_model)
    config = ws.model_dir("tiny") / "config.json"
    for detector, folder in (("yunet", "yunet.2"), ("mtcnn-fast", "mtcnn-fast")):
        config.write_text(json.dumps(json.loads(config.read_text()) | {"detector": detector}))
        assert cache_name(detector) == folder
        assert load_model(ws, "tiny").preparer.cache.folder == ws.faces_cache_dir / folder
