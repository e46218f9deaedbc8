"""Every face of a group photo: search answers face by face, verify compares the
faces asked for, enrollment refuses a group photo unless told which face, on a
dlib-resnet gallery of seed people (skipped where the seed photos are absent)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main
from storage.errors import AlreadyEnrolled
from tests.conftest import need_seed_faces_and_dlib
from tests.groups import compose, dlib_home, seed
from verifier.errors import NoSuchFace, SeveralFaces

pytestmark = pytest.mark.integration

GALLERY = ("obama", "lula", "messi")
STRANGER = "meryl_streep"  # never in the gallery


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    need_seed_faces_and_dlib()
    ws, sessions, _ = dlib_home(tmp_path_factory.mktemp("groups"), GALLERY)
    yield ws, sessions
    sessions.kw["bind"].dispose()


@pytest.fixture
def verifier(home):
    from jobs.live import Verifier

    return Verifier.open(*home, "dlib")


@pytest.fixture(scope="module")
def stranger_and_obama() -> bytes:
    """The stranger's face is the larger one: the largest-face answer is "unknown"."""
    return compose([seed(STRANGER, 0), seed("obama", 6)], [360, 220])


def test_search_answers_every_face(verifier, stranger_and_obama):
    r = verifier.search(stranger_and_obama, 3, "group.png")
    assert len(r.faces) == 2 and r.face == "several_faces"
    big, small = r.faces
    assert big.box[2] * big.box[3] > small.box[2] * small.box[3] and small.box[0] > big.box[0]
    assert big.unknown and not small.unknown
    assert small.matches[0].identity == "obama" and small.matches[0].passes
    assert len(small.matches) == 3 and [m.rank for m in small.matches] == [1, 2, 3]
    # the top level still describes the largest face, for older clients
    assert r.unknown and r.matches == list(big.matches)
    assert set(big.landmarks) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert (r.width, r.height) == (670, 420)
    d = r.as_dict()
    assert [f["unknown"] for f in d["faces"]] == [True, False]
    assert len(verifier.search(stranger_and_obama, 3, max_faces=1).faces) == 1


def test_each_face_as_if_it_were_alone(verifier, stranger_and_obama):
    """A face of a group photo gets the distances its own photo alone gets; on a
    single-face photo the faces path equals the single-face path exactly."""
    photo = seed("lula", 6).read_bytes()
    alone = verifier.search(photo, 3)
    prepared = verifier.prepare(photo)
    assert len(alone.faces) == 1 and alone.faces[0].box == prepared.box
    faces = verifier.prepare_faces(photo)
    assert np.array_equal(faces[0].pixels, prepared.pixels)
    np.testing.assert_allclose(verifier.embed(faces), verifier.embed([prepared]), atol=1e-6)
    assert alone.matches[0].identity == "lula"
    group = compose([seed(STRANGER, 0), seed("lula", 6), seed("messi", 6)], [300, 260, 220])
    r = verifier.search(group, 3)
    assert [f.matches[0].identity for f in r.faces[1:]] == ["lula", "messi"]
    assert [f.unknown for f in r.faces] == [True, False, False]


def test_search_many_batches_faces_and_ranks_like_one_by_one(verifier, stranger_and_obama):
    """Faces of several photos go through one forward pass; the answers equal the
    photo-by-photo ones, and a bad photo is answered with its error in its place."""
    items = [("g1", stranger_and_obama), ("bad", b"junk"),
             ("lula", seed("lula", 7).read_bytes()),
             ("g2", compose([seed("messi", 7), seed("obama", 7)], [300, 280]))]
    calls = []
    embed = verifier.loaded.embed
    verifier.loaded.embed = lambda x: calls.append(len(x)) or embed(x)
    try:
        batched = list(verifier.search_many(items, 4))
    finally:
        verifier.loaded.embed = embed
    assert calls == [5]  # 2 + 1 + 2 faces, one call
    assert [r.photo for r in batched] == ["g1", "bad", "lula", "g2"]
    assert batched[1].error and not batched[1].faces
    for r, (name, data) in zip(batched, items):
        if r.error:
            continue
        alone = verifier.search(data, 4, name)
        assert [f.box for f in r.faces] == [f.box for f in alone.faces]
        for a, b in zip(r.faces, alone.faces):
            assert [m.identity for m in a.matches] == [m.identity for m in b.matches]
            np.testing.assert_allclose([m.distance for m in a.matches],
                                       [m.distance for m in b.matches], atol=1e-5)
    assert [f.matches[0].identity for f in batched[3].faces] == ["messi", "obama"]


def test_rank_many_equals_brute_force(verifier):
    """Identities ranked by their closest photo, for several vectors at once."""
    from storage import gallery

    with verifier.sessions() as s:
        ids = gallery.model_ids(s, verifier.model_id)
        vectors = gallery.vectors_of(s, ids)
    assert verifier.gallery_size == len(ids)  # loads the index and its photos
    names = {i: verifier._photos[int(i)].identity for i in ids}
    probes = vectors[[0, 5, 9]] + np.random.default_rng(1).normal(0, 0.02, (3, vectors.shape[1]))
    ranked, _ = verifier.rank_many(probes.astype(np.float32), 3)
    for probe, matches in zip(probes, ranked):
        d = np.linalg.norm(vectors - probe, axis=1)
        best: dict[str, float] = {}
        for i, dist in zip(ids, d):
            best[names[i]] = min(best.get(names[i], np.inf), dist)
        expect = sorted(best.items(), key=lambda kv: kv[1])[:3]
        assert [m.identity for m in matches] == [n for n, _ in expect]
        np.testing.assert_allclose([m.distance for m in matches], [x for _, x in expect], atol=1e-4)


def test_verify_compares_the_faces_asked_for(verifier, stranger_and_obama):
    other = seed("obama", 7).read_bytes()
    largest = verifier.verify(stranger_and_obama, other)
    assert not largest.same and largest.faces_a == 2 and largest.faces_b == 1
    chosen = verifier.verify(stranger_and_obama, other, face_a=1)
    assert chosen.same and chosen.face_a == 1 and chosen.box_a[0] > largest.box_a[0]
    with pytest.raises(NoSuchFace, match="holds 2 faces"):
        verifier.verify(stranger_and_obama, other, face_a=2)


def test_enrolling_a_group_photo_needs_the_face_named(verifier, stranger_and_obama):
    from jobs.answers import LARGEST

    with pytest.raises(SeveralFaces) as refused:
        verifier.enroll("someone", stranger_and_obama)
    assert len(refused.value.boxes) == 2 and refused.value.boxes[0][2] > refused.value.boxes[1][2]
    assert verifier.gallery_size == 12 and not verifier.ws.enrolled_dir.exists()
    done = verifier.enroll("Barack", stranger_and_obama, face=1)
    assert done.created and done.face == "several_faces" and done.box == refused.value.boxes[1]
    # the photo stands for that face: its chip is the small face's, not the largest
    chip = verifier.face_chip(done.photo_id)
    faces = verifier.prepare_faces(stranger_and_obama)
    assert np.array_equal(chip, faces[1].pixels)
    np.testing.assert_allclose(verifier.photo_vector(done.photo_id), verifier.embed(faces)[1],
                               atol=1e-6)
    assert verifier.search(seed("obama", 5).read_bytes(), 2).matches[0].distance < 0.6
    verifier.remove_identity("Barack")
    done = verifier.enroll("Meryl", stranger_and_obama, face=LARGEST)
    assert done.box == refused.value.boxes[0]
    verifier.remove_identity("Meryl")
    assert verifier.gallery_size == 12


def test_http_search_verify_enroll(home, stranger_and_obama):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app

    ws, sessions = home
    with TestClient(create_app(ws, sessions, Settings(model="dlib", auth=False))) as c:
        r = c.post("/v1/search", files={"photo": ("g.png", stranger_and_obama)},
                   data={"k": "2", "chips": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["unknown"] and len(body["faces"]) == 2 and (body["width"], body["height"]) == (670, 420)
        assert body["faces"][1]["matches"][0]["identity"] == "obama" and not body["faces"][1]["unknown"]
        assert body["matches"] == body["faces"][0]["matches"]
        assert all(f["chip"].startswith("data:image/jpeg") for f in body["faces"])
        assert body["probe_chip"] == body["faces"][0]["chip"]
        r = c.post("/v1/verify", files={"photo_a": ("g.png", stranger_and_obama),
                                        "photo_b": ("o.jpg", seed("obama", 7).read_bytes())},
                   data={"face_a": "1"})
        assert r.status_code == 200 and r.json()["same"] and r.json()["faces_a"] == 2
        assert r.json()["face_a"] == 1 and len(r.json()["box_a"]) == 4
        r = c.post("/v1/verify", files={"photo_a": ("g.png", stranger_and_obama),
                                        "photo_b": ("o.jpg", seed("obama", 7).read_bytes())},
                   data={"face_a": "3"})
        assert r.status_code == 422 and r.json()["code"] == "no_such_face"
        r = c.post("/v1/identities/Barack/photos", files={"photos": ("g.png", stranger_and_obama)})
        assert r.status_code == 422 and r.json()["code"] == "several_faces"
        assert len(r.json()["faces"]) == 2 and "face=largest" in r.json()["message"]
        r = c.post("/v1/identities/Barack/photos", files={"photos": ("g.png", stranger_and_obama)},
                   data={"face": "first"})
        assert r.status_code == 422
        r = c.post("/v1/identities/Barack/photos", files={"photos": ("g.png", stranger_and_obama)},
                   data={"face": "1"})
        assert r.status_code == 201, r.text
        assert r.json()["photos"][0]["box"] == body["faces"][1]["box"]
        photo_id = r.json()["photos"][0]["photo_id"]
        r = c.get(f"/v1/photos/{photo_id}/face")  # the face it stands for, as a JPEG
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert c.delete("/v1/identities/Barack").status_code == 200


def test_cli_query_face_by_face(home, stranger_and_obama, tmp_path):
    ws, _ = home
    photo = tmp_path / "group.png"
    photo.write_bytes(stranger_and_obama)

    def run(*args):
        return CliRunner().invoke(main, ["--home", str(ws.root), *args])

    r = run("query", str(photo), "-k", "2", "--json")
    assert r.exit_code == 0, r.output
    faces = json.loads(r.stdout)["results"][0]["faces"]
    assert [f["unknown"] for f in faces] == [True, False] and faces[1]["matches"][0]["identity"] == "obama"
    r = run("query", str(photo), "-k", "2", "--csv", str(tmp_path / "q.csv"))
    assert r.exit_code == 0
    assert "2 faces (670x420)" in r.output and "face 1 at left" in r.output and ": obama" in r.output
    rows = list(csv.DictReader((tmp_path / "q.csv").open()))
    assert [(row["face"], row["rank"]) for row in rows] == [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]
    assert rows[2]["identity"] == "obama" and rows[2]["unknown"] == "0" and rows[0]["unknown"] == "1"
    assert len(rows[2]["box"].split()) == 4
    other = seed("obama", 7)
    r = run("verify", str(photo), str(other))
    assert r.exit_code == 1 and "2 faces; compared face 0" in r.output and "--face-a" in r.output
    r = run("verify", str(photo), str(other), "--face-a", "1")
    assert r.exit_code == 0 and r.output.startswith("same")
    r = run("verify", str(photo), str(other), "--face-a", "4")
    assert r.exit_code == 2 and "no face 4" in r.output and "Traceback" not in r.output


@pytest.fixture(scope="module")
def two_strangers() -> bytes:
    """Two people who are not in the gallery, side by side (meryl_streep the larger)."""
    return compose([seed(STRANGER, 1), seed("idris_elba", 0)], [340, 260])


def test_a_group_photo_is_enrolled_face_by_face(verifier, two_strangers):
    """Each face of a group photo is a gallery entry of its own, under its own person:
    the photo's file is stored once, each face searches as its person, a face cannot
    be enrolled as two people, and removing one face leaves the other."""
    from sqlalchemy import select

    from storage.schema import Image

    before = verifier.gallery_size
    with verifier.sessions() as s:  # the folder's photos: each entry a face with its box and points
        folder = s.scalars(select(Image)).all()
    assert len(folder) == before and all(len(r.face_box) == 4 and len(r.landmarks) == 5 for r in folder)
    meryl = verifier.enroll("Meryl", two_strangers, face=0, source="group.png")
    idris = verifier.enroll("Idris", two_strangers, face=1, source="group.png")
    assert meryl.created and idris.created and (meryl.face_index, idris.face_index) == (0, 1)
    assert meryl.photo_id != idris.photo_id and verifier.gallery_size == before + 2
    files = lambda: [p for p in verifier.ws.enrolled_dir.rglob('*') if p.is_file()]  # noqa: E731
    assert len(files()) == 1  # one file for both faces
    assert not verifier.enroll("Meryl", two_strangers, face=0).created  # the same face again
    with pytest.raises(AlreadyEnrolled, match="face 1 of this photo is already enrolled as 'Idris'"):
        verifier.enroll("Meryl", two_strangers, face=1)
    # a box names the face too: the one it overlaps most
    assert verifier.enroll("Idris", two_strangers, face=tuple(idris.box)).photo_id == idris.photo_id
    for person, name in (("meryl_streep", "Meryl"), ("idris_elba", "Idris")):
        for n in (2, 3):
            top = verifier.search(seed(person, n).read_bytes(), 1).matches[0]
            assert top.identity == name and top.passes, (person, n, top)
    answered = verifier.search(two_strangers, 1).faces
    assert [f.matches[0].identity for f in answered] == ["Meryl", "Idris"]
    verifier.remove_photo(meryl.photo_id)
    assert verifier.gallery_size == before + 1 and len(files()) == 1  # Idris still needs it
    assert verifier.search(seed("idris_elba", 2).read_bytes(), 1).matches[0].identity == "Idris"
    moved = verifier.enroll("Meryl", two_strangers, face=0)
    assert verifier.move_face(moved.photo_id, "Meryl Streep") == moved.photo_id
    assert verifier.search(seed(STRANGER, 2).read_bytes(), 1).matches[0].identity == "Meryl Streep"
    assert verifier.remove_photo(idris.photo_id, every_face=True).photos == 2
    assert verifier.gallery_size == before and files() == []


def test_cli_enrolls_shows_moves_and_removes_faces(home, two_strangers, tmp_path):
    ws, sessions = home
    photo = tmp_path / "group.png"
    photo.write_bytes(two_strangers)
    def run(*args):
        return CliRunner().invoke(main, ["--home", str(ws.root), *args], catch_exceptions=False)

    refused = run("gallery", "enroll", "Meryl", str(photo))
    assert refused.exit_code == 1 and "holds 2 faces" in refused.output and "face 1 at " in refused.output
    assert "Traceback" not in refused.output
    assert run("gallery", "enroll", "Meryl", str(photo), "--face", "two").exit_code == 2
    first = json.loads(run("gallery", "enroll", "Meryl", str(photo), "--face", "0", "--json").output)
    out = run("gallery", "enroll", "Idris", str(photo), "--face", "1")
    assert out.exit_code == 0 and "group.png face 1 at " in out.output and "-> Idris: enrolled" in out.output
    shown = json.loads(run("gallery", "show", "Meryl", "--json").output)
    entry = first["photos"][0]["photo_id"]
    assert [f["photo_id"] for f in shown["faces"]] == [entry]
    assert [o["identity"] for o in shown["faces"][0]["others"]] == ["Idris"]
    assert "with Idris (face 1)" in run("gallery", "show", "Meryl").output
    checked = run("doctor")  # one file behind two entries: database, index and files agree
    assert checked.exit_code == 0, checked.output
    assert run("gallery", "move", str(entry), "Meryl Streep").exit_code == 0
    assert run("gallery", "show", "Meryl").exit_code == 1  # her only face moved
    out = run("gallery", "remove-face", str(entry), "--every-face")
    assert out.exit_code == 0 and "2 faces removed" in out.output
    assert run("gallery", "show", "Idris").exit_code == 1


def test_http_enrolls_a_group_photo_face_by_face(home, two_strangers):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app

    ws, sessions = home
    upload = {"photos": ("group.png", two_strangers)}
    with TestClient(create_app(ws, sessions, Settings(model="dlib", auth=False))) as c:
        a = c.post("/v1/identities/Meryl/photos", files=upload, data={"face": "0"})
        b = c.post("/v1/identities/Idris/photos", files=upload, data={"face": "1"})
        assert a.status_code == b.status_code == 201, (a.text, b.text)
        first, second = a.json()["photos"][0], b.json()["photos"][0]
        assert (first["face_index"], second["face_index"]) == (0, 1)
        by_box = c.post("/v1/identities/Idris/photos", files=upload,
                        data={"face": ",".join(str(v) for v in second["box"])})
        assert by_box.status_code == 200 and by_box.json()["photos"][0]["photo_id"] == second["photo_id"]
        assert c.post("/v1/identities/Idris/photos", files=upload, data={"face": "1,2,3"}).status_code == 422
        taken = c.post("/v1/identities/Someone/photos", files=upload, data={"face": "1"})
        assert taken.status_code == 409 and "already enrolled as 'Idris'" in taken.json()["message"]
        meryl = c.get("/v1/identities/Meryl").json()["photos"]
        assert meryl[0]["box"] == first["box"] and meryl[0]["face_index"] == 0
        assert meryl[0]["others"] == [{"id": second["photo_id"], "face_index": 1, "identity": "Idris",
                                       "box": second["box"]}]
        whole = c.get(f"/v1/photos/{second['photo_id']}").json()
        assert (whole["id"], whole["identity"], whole["face_index"]) == (second["photo_id"], "Idris", 1)
        assert [(f["identity"], f["box"]) for f in whole["faces"]] == [("Meryl", first["box"]),
                                                                     ("Idris", second["box"])]
        image = c.get(f"/v1/photos/{second['photo_id']}/image")
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        import io

        from PIL import Image as PILImage
        assert PILImage.open(io.BytesIO(image.content)).size == (whole["width"], whole["height"])
        assert c.get("/v1/photos/999999").json()["code"] == "photo_not_found"
        found = c.post("/v1/search", files={"photo": ("x.jpg", seed("idris_elba", 3).read_bytes())})
        assert found.json()["matches"][0]["identity"] == "Idris"
        moved = c.patch(f"/v1/photos/{second['photo_id']}", json={"identity": "Idris Elba"})
        assert moved.status_code == 200
        assert moved.json() == {"id": second["photo_id"], "identity": "Idris Elba"}
        assert c.get("/v1/identities/Idris").status_code == 404
        assert c.patch("/v1/photos/999999", json={"identity": "x"}).json()["code"] == "photo_not_found"
        assert c.patch(f"/v1/photos/{first['photo_id']}", json={"identity": ""}).status_code == 422
        gone = c.delete(f"/v1/photos/{first['photo_id']}", params={"every_face": "true"})
        assert gone.status_code == 200 and gone.json() == {"removed_photos": 2}
        assert c.get("/v1/identities/Idris%20Elba").status_code == 404
