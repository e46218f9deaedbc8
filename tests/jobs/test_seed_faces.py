"""Integration tests on the shared seed photos (skipped where they are absent)."""
import json
import shutil

import pytest
from click.testing import CliRunner

from jobs.cli import main
from verifier.defaults import DEFAULT_DETECTOR

pytestmark = pytest.mark.integration


def test_mtcnn_finds_a_face_in_every_seed_photo(seed_faces, tmp_path):
    from verifier.preparation import PhotoPreparer
    from storage.facecache import FaceCache
    from verifier.images import scan_dataset

    cache = FaceCache(tmp_path / "faces", "mtcnn")
    prep = PhotoPreparer(150, "mtcnn", cache=cache, require_face=True)
    photos = scan_dataset(seed_faces).photos
    assert len(photos) == 128
    statuses = [prep.prepare(p.path).status for p in photos]  # raises NoFaceFound otherwise
    assert set(statuses) <= {"face", "several_faces"}
    assert prep.detections == 128
    prep.prepare(photos[0].path)  # a second time: from the cache, no detector run
    assert prep.detections == 128 and cache.hits == 1


@pytest.fixture(scope="module")
def few_seed_faces(tmp_path_factory):
    from tests.conftest import SEED_FACES, need_seed_faces_and_dlib

    need_seed_faces_and_dlib()
    root = tmp_path_factory.mktemp("few")
    for person in sorted(p for p in SEED_FACES.iterdir() if p.is_dir())[:4]:
        (root / "gallery" / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:4]:
            shutil.copy(photo, root / "gallery" / person.name / photo.name)
    return root


def test_dlib_resnet_train_embed_evaluate_query(few_seed_faces, tmp_path):
    home = str(tmp_path / "home")
    data = str(few_seed_faces / "gallery")

    def run(*args):
        return CliRunner().invoke(main, ["--home", home, "-q", *args], catch_exceptions=False)

    r = run("train", "--data", data, "--backbone", "dlib-resnet", "--head", "none",
            "--fine-tune", "0", "--name", "dlib", "--protocol", "image-disjoint")
    assert r.exit_code == 0, r.output
    assert "nothing to train" in r.output and f"faces ({DEFAULT_DETECTOR}):" in r.output and "no face" not in r.output
    r = run("embed", "--data", data, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["added"] == 16
    r = run("evaluate", "--split", "validation", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["metrics"]["roc_auc"] > 0.95
    person = sorted((few_seed_faces / "gallery").iterdir())[1]
    probe = sorted(person.iterdir())[0]
    r = run("query", str(probe), "--json")
    assert r.exit_code == 0
    assert json.loads(r.output)["results"][0]["matches"][0]["identity"] == person.name
    # photos held back from the gallery: each person is still ranked first
    from tests.conftest import SEED_FACES

    for held in sorted((few_seed_faces / "gallery").iterdir()):
        unseen = sorted((SEED_FACES / held.name).iterdir())[6]
        r = run("query", str(unseen), "-k", "4", "--json")
        matches = json.loads(r.output)["results"][0]["matches"]
        assert matches[0]["identity"] == held.name and len(matches) == 4
    # a photo without a face: a clear message, non-zero exit, nothing else affected
    import numpy as np
    from PIL import Image

    from verifier.synthetic import pattern_image

    blank = tmp_path / "stripes.png"
    Image.fromarray(pattern_image(0, np.random.default_rng(0), 150)).save(blank)
    r = CliRunner().invoke(main, ["--home", home, "-q", "query", str(blank), str(probe), "--json"])
    assert r.exit_code == 1
    results = json.loads(r.stdout)["results"]
    assert "no face" in results[0]["error"] and results[1]["matches"][0]["identity"] == person.name
    r = CliRunner().invoke(main, ["--home", home, "-q", "verify", str(blank), str(probe)])
    assert r.exit_code == 2 and "no face" in r.output
    # the same through the service: the right person, and no_face as a 422
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app
    from storage.database import open_database
    from storage.workspace import Workspace

    ws = Workspace.open(home)
    app = create_app(ws, open_database(ws.database_url), Settings(model="dlib", auth=False))
    with TestClient(app) as client:
        r = client.post("/v1/search", files={"photo": ("p.png", unseen.read_bytes())})
        assert r.status_code == 200 and r.json()["matches"][0]["identity"] == held.name
        assert r.json()["face"] in ("face", "several_faces")
        r = client.post("/v1/search", files={"photo": ("stripes.png", blank.read_bytes())})
        assert r.status_code == 422 and r.json()["code"] == "no_face"
        # an enrollment refused part-way leaves no cached detection and no file behind;
        # an accepted one caches its detection, and removing it forgets it
        from verifier.images import sha256_bytes

        fresh = sorted((SEED_FACES / held.name).iterdir())[7].read_bytes()
        cached = ws.faces_cache_dir / DEFAULT_DETECTOR / sha256_bytes(fresh)[:2] / f"{sha256_bytes(fresh)}.json"
        r = client.post("/v1/identities/held/photos", files=[("photos", ("a.png", fresh))])
        assert r.status_code == 201 and cached.exists()
        photo_id = r.json()["photos"][0]["photo_id"]
        assert client.delete(f"/v1/photos/{photo_id}").status_code == 200 and not cached.exists()
        r = client.post("/v1/identities/other/photos", files=[("photos", ("a.png", fresh)),
                                                               ("photos", ("b.png", probe.read_bytes()))])
        assert r.status_code == 409 and repr(probe.parent.name) in r.json()["message"]  # the
        # probe is a folder photo of its person: the same bytes are one photo
        r = client.post("/v1/identities/other/photos", files=[("photos", ("a.png", fresh))])
        assert r.status_code == 201
        r = client.post("/v1/identities/third/photos", files=[
            ("photos", ("c.png", sorted((SEED_FACES / held.name).iterdir())[5].read_bytes())),
            ("photos", ("a.png", fresh))])
        assert r.status_code == 409 and r.json()["code"] == "already_enrolled"
        held_back = sha256_bytes(sorted((SEED_FACES / held.name).iterdir())[5].read_bytes())
        assert not (ws.faces_cache_dir / DEFAULT_DETECTOR / held_back[:2] / f"{held_back}.json").exists()
        assert not list(ws.enrolled_dir.rglob(f"{held_back}.*"))
    # a trained Dense head on top of the descriptor also works
    r = run("train", "--data", data, "--backbone", "dlib-resnet", "--fine-tune", "0",
            "--epochs", "2", "--embedding-dim", "16", "--name", "dlib-head")
    assert r.exit_code == 0, r.output
    assert "epoch 2/2" in r.output
    # both models on one pair list of the seed photos, compared in one report
    import itertools

    photos = sorted(p.relative_to(few_seed_faces / "gallery").as_posix()
                    for p in (few_seed_faces / "gallery").rglob("*.png"))
    rows = ["a,b,label"] + [f"{a},{b},{int(a.split('/')[0] == b.split('/')[0])}"
                            for a, b in itertools.combinations(photos, 2)]
    listing = tmp_path / "seed-pairs.csv"
    listing.write_text("\n".join(rows) + "\n")
    runs = []
    for model in ("dlib", "dlib-head"):
        r = run("evaluate", "--pairs", str(listing), "--data", data, "--model", model, "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        assert doc["metrics"]["pairs"] == 120 and doc["overlap"]["photos_in_training"] == 16
        runs.append(str(doc["run"]))
    assert json.loads(r.output)["metrics"]["roc_auc"] > 0.9
    r = run("report", *runs, "--format", "html", "--out", str(tmp_path / "compare.html"))
    page = (tmp_path / "compare.html").read_text()
    assert "All runs scored the same 120 pairs." in page and "run " + runs[1] + ": dlib-head" in page
    assert "pairs contain a photo the model was trained on" in page
