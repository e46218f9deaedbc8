"""`verifier cluster` on the seed photos with dlib-resnet and MTCNN: the people are
found with their names hidden, gallery people are suggested, a grown folder keeps
the numbers of the groups it did not change, and a named group is then found by
`verifier query` (skipped where the seed photos are absent)."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main
from tests.conftest import SEED_FACES, need_seed_faces_and_dlib
from tests.groups import compose, dlib_home, seed
from verifier.clustering import bcubed

pytestmark = pytest.mark.integration

GALLERY = ("obama", "lula", "messi")
FIRST = 10
"""People in the first folder (the seed set's first ten by name); the rest arrive later."""


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    need_seed_faces_and_dlib()
    base = tmp_path_factory.mktemp("cluster-seed")
    ws, sessions, _ = dlib_home(base, GALLERY)
    yield ws, sessions, base
    sessions.kw["bind"].dispose()


def hide_names(people, folder, truth, holdout=1):
    """Copy every seed photo of ``people`` but the last ``holdout`` into ``folder``
    under numbered names; ``truth`` maps the new path to the person."""
    folder.mkdir(exist_ok=True)
    for person in people:
        for photo in sorted((SEED_FACES / person).iterdir())[:-holdout]:
            target = folder / f"photo_{len(truth):03d}{photo.suffix}"
            shutil.copy(photo, target)
            truth[str(target)] = person


def cli(ws, *args):
    r = CliRunner().invoke(main, ["--home", str(ws.root), "-q", *args])
    assert r.exit_code == 0, r.output
    return r.output


def scores(out, truth):
    faces = [(f["photo"], c["cluster"]) for c in out["clusters"] for f in c["faces"]]
    faces += [(f["photo"], -1) for f in out["unclustered_faces"]]
    people = np.unique([truth[p] for p, _ in faces], return_inverse=True)[1]
    return bcubed(people, np.array([c for _, c in faces]))


def labels(run, photos):
    """Each photo's group in a run (every seed photo here has one face)."""
    of = {f["photo"]: c["cluster"] for c in run["clusters"] for f in c["faces"]}
    return np.array([of.get(p, -1) for p in photos])


def test_seed_people_are_found_suggested_kept_and_named(home, tmp_path):
    ws, sessions, _ = home
    everyone = sorted(p.name for p in SEED_FACES.iterdir())
    truth: dict[str, str] = {}
    folder = tmp_path / "unsorted"
    hide_names(everyone[:FIRST], folder, truth)
    sheet = tmp_path / "sheet.html"
    out = json.loads(cli(ws, "cluster", str(folder), "--json", "--html", str(sheet)))
    precision, recall, f = scores(out, truth)
    assert f >= 0.99, (precision, recall)
    assert len(out["clusters"]) == FIRST
    for group in out["clusters"]:
        person = truth[group["photos"][0]]
        want = person if person in GALLERY else None
        assert (group["suggestion"] or {}).get("identity") == want
    assert sheet.read_text().count("<figure") == sum(c["size"] for c in out["clusters"]) + len(out["unclustered_faces"])

    # a grown folder: the groups it did not touch keep their numbers
    hide_names(everyone[FIRST:], folder, truth)
    grown = json.loads(cli(ws, "cluster", str(folder), "--json"))
    assert grown["counts"]["embedded"] == grown["counts"]["faces"] - out["counts"]["faces"]
    assert grown["counts"]["reused"] == out["counts"]["faces"]
    assert scores(grown, truth)[2] >= 0.99
    before = {frozenset(c["photos"]): c["cluster"] for c in out["clusters"]}
    after = {frozenset(c["photos"]): c["cluster"] for c in grown["clusters"]}
    assert all(after[k] == v for k, v in before.items() if k in after)
    assert len(set(before) & set(after)) >= FIRST - 1
    assert min(c["cluster"] for c in grown["clusters"] if frozenset(c["photos"]) not in before) >= FIRST
    assert grown["counts"]["continued"] == out["run"] and grown["counts"]["carried"] == out["counts"]["faces"]
    # the same faces grouped anew, in the same order (the folder's, sorted): the same groups
    anew = json.loads(cli(ws, "cluster", str(folder), "--regroup", "--json"))
    assert "continued" not in anew["counts"] and anew["counts"]["faces"] == grown["counts"]["faces"]
    photos = sorted(truth)
    assert bcubed(labels(grown, photos), labels(anew, photos)) == (1.0, 1.0, 1.0)

    # name a person who is not in the gallery; their held-out photo is then found
    stranger = next(p for p in everyone[:FIRST] if p not in GALLERY)
    group = next(c for c in grown["clusters"] if truth[c["photos"][0]] == stranger)
    named = json.loads(cli(ws, "cluster", "name", str(grown["run"]), str(group["cluster"]), stranger, "--json"))
    assert named["enrolled"] == group["size"] and named["skipped"] == {}
    held_out = sorted((SEED_FACES / stranger).iterdir())[-1]
    answer = json.loads(cli(ws, "query", str(held_out), "--json"))["results"][0]
    assert answer["matches"][0]["identity"] == stranger and answer["matches"][0]["passes"]


def test_a_group_photo_joins_the_groups_of_both_people(home, tmp_path):
    ws, _, _ = home
    folder = tmp_path / "with-group"
    folder.mkdir()
    for person in ("obama", "messi"):
        for n in range(3):
            shutil.copy(seed(person, n), folder / f"{person[0]}{n}.png")
    (folder / "both.png").write_bytes(compose([seed("obama", 6), seed("messi", 6)], [300, 300]))
    out = json.loads(cli(ws, "cluster", str(folder), "--regroup", "--json"))
    assert [c["size"] for c in out["clusters"]] == [4, 4]
    for c in out["clusters"]:
        assert "both.png" in " ".join(c["photos"])
        boxes = [f["box"] for f in c["faces"] if f["photo"].endswith("both.png")]
        assert len(boxes) == 1 and len(boxes[0]) == 4
    # naming each group enrolls the group photo's face of that person: one photo, two people
    run, entries = out["run"], {}
    for c in out["clusters"]:
        person = "obama" if any(f["photo"].endswith("o0.png") for f in c["faces"]) else "messi"
        named = json.loads(cli(ws, "cluster", "name", str(run), str(c["cluster"]), "--merge-into", person,
                               "--json"))
        assert (named["enrolled"], named["already"], named["skipped"]) == (1, 3, {}), named
    for person in ("obama", "messi"):
        shown = json.loads(cli(ws, "gallery", "show", person, "--json"))["faces"]
        entries[person] = [f for f in shown if f["photo"] == "both.png"]
    (obama,), (messi,) = entries["obama"], entries["messi"]
    assert obama["others"] == [{"photo_id": messi["photo_id"], "face_index": messi["face_index"],
                                "identity": "messi"}]
    assert {obama["face_index"], messi["face_index"]} == {0, 1}
    assert "2 faces removed" in cli(ws, "gallery", "remove-face", str(obama["photo_id"]), "--every-face")
