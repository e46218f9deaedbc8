"""The reproductions of the wrong-name and never-catching-up reports, as regression
tests, and the faults the one write path answers: a corrupted index, write races
between processes, refusals part-way, forgetting, names in two spellings."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

pytest.importorskip("httpx")

from jobs.cli import main  # noqa: E402
from jobs.embed import embed_gallery  # noqa: E402
from jobs.errors import EnrollConflict  # noqa: E402
from jobs.live import Verifier  # noqa: E402
from storage import gallery  # noqa: E402
from storage import models  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.errors import GalleryConflict  # noqa: E402
from storage.index import build_index, save_index  # noqa: E402
from storage.schema import Identity, Image  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.photos import png  # noqa: E402
from tests.servers import Server  # noqa: E402
from verifier.synthetic import write_identity_set  # noqa: E402


def gallery_of(home, tmp_path, db_url, threshold: float = 0.5):
    ws = Workspace.open(home)
    sessions = open_database(db_url)
    data = write_identity_set(tmp_path / "gallery", identities=3, per_identity=2, size=32, seed=5)
    embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = threshold
    return ws, sessions, data


@pytest.mark.integration
def test_a_removed_newest_photo_never_comes_back_as_someone_else(home_with_model, tmp_path):
    """Report 1: remove the photo holding the newest embedding, enroll another person,
    SIGKILL before the snapshot, restart: SQLite reused the id and the snapshot kept
    the old vector under it, so the removed photo was found as the new person."""
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, f"sqlite:///{home_with_model}/verifier.db")
    server = Server(home_with_model, ws.database_url, snapshot=3600)
    gone, newcomer = png(4, 1), png(0, 77)
    try:
        server.start()
        assert server.enroll("leaving", [gone]) == 201  # the newest embedding
        server.stop()  # graceful: the snapshot on disk holds it
        with sessions() as s:
            photo_id = s.scalar(select(Image.id).join(Identity).where(Identity.name == "leaving"))
        server.start()
        assert server.delete(f"/v1/photos/{photo_id}") == 200
        assert server.enroll("newcomer", [newcomer]) == 201
        server.kill()  # before any snapshot
        server.start()
        server.wait_caught_up()
        found = server.search(gone, k=3)
        assert all(m["identity"] != "leaving" for m in found), found
        assert not (found[0]["identity"] == "newcomer" and found[0]["distance"] < 1e-3), found
        top = server.search(newcomer, k=1)[0]
        assert top["identity"] == "newcomer" and top["distance"] < 1e-3, top
    finally:
        server.kill()
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "doctor"])
    assert r.exit_code == 0, r.output


@pytest.mark.integration
def test_two_servers_on_one_database_see_every_enrollment(home_with_model, tmp_path, db_url):
    """Report 2 and 3: 40 enrollments, 8 at a time, alternating between two servers,
    then four of the same photo under four names: every answer 201 or 409, and both
    servers find every enrolled photo."""
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    servers = [Server(home_with_model, db_url), Server(home_with_model, db_url)]
    for server in servers:
        server.start()
    try:
        photos = {f"p{n}": png(n % 5, 500 + n) for n in range(40)}
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda kv: servers[int(kv[0][1:]) % 2].enroll(kv[0], [kv[1]]),
                                  photos.items()))
        assert codes == [201] * 40
        shared = png(3, 4242)
        with ThreadPoolExecutor(4) as pool:
            race = list(pool.map(lambda n: servers[n % 2].enroll(f"twin{n}", [shared]), range(4)))
        assert sorted(race) == [201, 409, 409, 409], race
        for server in servers:
            server.wait_caught_up(timeout=30)
            for name, photo in photos.items():
                top = server.search(photo, k=1)[0]
                assert top["identity"] == name and top["distance"] < 1e-3, (server.port, name, top)
    finally:
        for server in servers:
            server.kill()
    sessions.kw["bind"].dispose()


def test_doctor_finds_and_repairs_swapped_vectors(home_with_model, tmp_path):
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, f"sqlite:///{home_with_model}/verifier.db")
    with sessions() as s:
        ids, vectors = gallery.model_vectors(s, models.get_model(s, "tiny").id)
        seq = gallery.changes.head(s)
    swapped = ids.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    save_index(ws.index_path("tiny"), build_index(vectors, swapped), "tiny", "Flat", seq=seq)
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "doctor"])
    assert r.exit_code == 1 and "2 ids holding another vector" in r.output, r.output
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "doctor", "--repair"])
    assert r.exit_code == 0 and "rebuilt the index of tiny" in r.output, r.output
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "doctor"])
    assert r.exit_code == 0 and "agree" in r.output, r.output


def test_a_refusal_part_way_leaves_no_file_behind(home_with_model, tmp_path, db_url):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    taken = png(1, 9)
    v.enroll("first", taken)
    fresh = png(2, 10)
    with pytest.raises(EnrollConflict, match="already enrolled as 'first'"):
        v.enroll_many("second", [("a.png", fresh), ("b.png", taken)])
    files = sorted(p.name for p in ws.enrolled_dir.rglob("*.png"))
    assert len(files) == 1  # the first photo's only: nothing of the refused request
    with sessions() as s:
        assert s.scalar(select(Identity.id).where(Identity.name == "second")) is None


def test_removal_forgets_the_file_the_upload_name_and_the_cached_faces(home_with_model, tmp_path):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, f"sqlite:///{home_with_model}/verifier.db")
    v = Verifier.open(ws, sessions, "tiny")
    photo = png(3, 3)
    done = v.enroll("forget me", photo, source="holiday-2024.png")
    with sessions() as s:
        row = s.get(Image, done.photo_id)
        path, sha = row.path, row.sha256
    cached = ws.faces_cache_dir / "mtcnn" / sha[:2] / f"{sha}.json"
    cached.parent.mkdir(parents=True)
    cached.write_text("[]")  # as a model with a detector would have left it
    v.remove_identity("forget me")
    with sessions() as s:
        assert s.get(Image, done.photo_id) is None  # the row, its upload name with it
        assert s.scalar(select(Identity.id).where(Identity.name == "forget me")) is None
    assert not cached.exists() and not (ws.root / path).exists()
    folder_photo = next(iter(sorted(data.rglob("*.png"))))
    with sessions() as s:
        folder_id = s.scalar(select(Image.id).where(Image.path == str(folder_photo)))
    v.remove_photo(folder_id)
    assert folder_photo.exists()  # a folder's file is the user's


def test_two_spellings_are_one_person(home_with_model, tmp_path, db_url):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    v.enroll("Zoe\u0308", png(0, 1))  # decomposed
    v.enroll("Zo\u00eb", png(0, 2))   # composed
    with sessions() as s:
        assert s.scalars(select(Identity.name).where(Identity.name.like("Zo%"))).all() == ["Zo\u00eb"]
    (data / "Zoe\u0308").mkdir()
    (data / "Zoe\u0308" / "x.png").write_bytes(png(0, 3))
    embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    with sessions() as s:
        assert len(gallery.photos_of(s, "Zo\u00eb")) == 3
    for bad in ("evil\u202egnp.exe", "zero\u200bwidth", "bell\x07"):
        with pytest.raises(Exception, match="invalid identity name"):
            v.enroll(bad, png(1, 1))


def test_rename_and_merge(home_with_model, tmp_path, db_url):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    probe = (data / "person_00" / "img_00.png").read_bytes()
    assert v.rename_identity("person_00", "Ada") == 2
    assert v.search(probe, k=1).matches[0].identity == "Ada"
    with pytest.raises(GalleryConflict, match="merge"):
        v.rename_identity("Ada", "person_01")
    assert v.rename_identity("Ada", "person_01", merge=True) == 4
    assert v.search(probe, k=1).matches[0].identity == "person_01"
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "--db-url", db_url, "gallery",
                                  "rename", "person_01", "Bea", "--json"])
    assert r.exit_code == 0 and '"photos": 4' in r.output, r.output
    assert v.refresh().updated == 4  # the server's view follows the change log
    assert v.search(probe, k=1).matches[0].identity == "Bea"


def test_gallery_remove_from_the_command_line(home_with_model, tmp_path, db_url):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    probe = (data / "person_00" / "img_00.png").read_bytes()
    assert v.search(probe, k=1).matches[0].identity == "person_00"
    cli = ["--home", str(home_with_model), "--db-url", db_url, "gallery", "remove"]
    r = CliRunner().invoke(main, cli + ["person_00", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == {"name": "person_00", "removed_photos": 2}, r.output
    assert v.refresh().removed == 2  # a running server follows
    assert v.search(probe, k=1).matches[0].identity != "person_00"
    with sessions() as s:
        assert gallery.photos_of(s, "person_00") == []
    r = CliRunner().invoke(main, cli + ["person_00"])
    assert r.exit_code == 1 and "no identity 'person_00'" in r.output and "Traceback" not in r.output
    summary = embed_gallery(ws, sessions, data, model="tiny", quiet=True, restore_removed=True)
    assert summary.restored == 2


def test_two_writers_of_the_same_bytes_at_the_same_moment_one_wins(home_with_model, tmp_path, db_url):
    """Two writers enrol the same bytes under two names at the same moment: the
    gallery write lock puts one after the other, so the second sees the winner's
    row and is refused as a conflict (no error, no second copy)."""
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    with sessions() as s:
        model_id = models.get_model(s, "tiny").id
    photo = gallery.NewPhoto(str(ws.enrolled_path("ab" * 32, "png")), "ab" * 32, 32, 32, "whole",
                             None, np.zeros(8, np.float32))
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[object] = []

    def writer(name: str) -> None:
        def work(session):
            looked = session.scalar(select(Image.id).where(Image.path == photo.path))
            time.sleep(0.3)  # the other writer is waiting for the lock meanwhile
            return looked, gallery.enroll(session, model_id, name, photo)

        barrier.wait()
        try:
            outcomes.append(gallery.transaction(sessions, work))
        except GalleryConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyEnrolled", "tuple"]
    looked, _ = next(o for o in outcomes if isinstance(o, tuple))
    assert looked is None  # the winner looked while nobody had written


def test_doctor_finds_an_enrolled_photo_whose_file_is_gone_and_restores_it(home_with_model, tmp_path):
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, f"sqlite:///{home_with_model}/verifier.db")
    v = Verifier.open(ws, sessions, "tiny")
    kept, lost = png(1, 61), png(2, 62)
    with_copy, without = v.enroll("copied", kept), v.enroll("gone", lost)
    with sessions() as s:
        paths = {i: s.get(Image, i).path for i in (with_copy.photo_id, without.photo_id)}
    for path in paths.values():
        Path(path).unlink()
    upload = ws.upload_path(Path(paths[with_copy.photo_id]).stem, "png")  # a cluster upload's copy
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(kept)
    home = ["--home", str(home_with_model)]
    r = CliRunner().invoke(main, [*home, "doctor"])
    assert r.exit_code == 1 and f"enrolled photo {with_copy.photo_id}: its file" in r.output, r.output
    r = CliRunner().invoke(main, [*home, "doctor", "--repair"])
    assert f"restored the file of enrolled photo {with_copy.photo_id}" in r.output, r.output
    assert f"enrolled photo {without.photo_id}: its file is gone and no copy" in r.output
    assert Path(paths[with_copy.photo_id]).read_bytes() == kept
