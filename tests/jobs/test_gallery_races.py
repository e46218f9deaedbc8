"""Races between two writers on one database (issue 36), each made to happen at the
moment that broke it: a rename while the other writer enrolls a photo of the same
person, a removal while the other enrolls the same bytes again, the same bytes under
two names, and names of people removed. Two verifiers stand for two servers; the
other writer is started inside the first one's unit of work and given time to
finish before the first commits (it cannot, when the gallery write lock holds it)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

pytest.importorskip("httpx")

from jobs.errors import EnrollConflict  # noqa: E402
from jobs.live import Verifier  # noqa: E402
from storage import gallery  # noqa: E402
from storage.schema import Identity, Image, ImageStatus  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.jobs.test_gallery_faults import gallery_of  # noqa: E402
from tests.photos import png  # noqa: E402

OTHER_WRITER_S = 1.5
"""How long the first writer waits for the other before it goes on to commit."""


def meanwhile(work) -> threading.Thread:
    """Run ``work`` in another thread and give it :data:`OTHER_WRITER_S` to finish."""
    errors: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.errors = errors
    thread.start()
    thread.join(OTHER_WRITER_S)
    return thread


def finished(thread: threading.Thread) -> None:
    thread.join(30)
    assert not thread.is_alive()
    if thread.errors:
        raise thread.errors[0]


def name_of(sessions, photo_id: int) -> str:
    with sessions() as s:
        return s.scalar(select(Identity.name).join(Image, Image.identity_id == Identity.id)
                        .where(Image.id == photo_id))


@pytest.mark.parametrize("new, merge", [("Ada", False), ("person_01", True)])
def test_a_rename_or_merge_racing_an_enrollment_leaves_every_server_with_the_databases_name(
        home_with_model, tmp_path, db_url, monkeypatch, new, merge):
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    a, b = Verifier.open(ws, sessions, "tiny"), Verifier.open(ws, sessions, "tiny")
    a.gallery_size, b.gallery_size  # noqa: B018 - both loaded before the race
    newcomer = png(0, 4242)
    enrolled = {}
    rename = gallery.rename_identity

    def racing_rename(session, old, new, **kw):
        moved = rename(session, old, new, **kw)
        enrolled["thread"] = meanwhile(lambda: enrolled.update(
            done=b.enroll("person_00", newcomer)))
        return moved

    monkeypatch.setattr(gallery, "rename_identity", racing_rename)
    a.rename_identity("person_00", new, merge=merge)
    monkeypatch.setattr(gallery, "rename_identity", rename)
    finished(enrolled["thread"])
    truth = name_of(sessions, enrolled["done"].photo_id)
    for server in (a, b):
        server.refresh()
        top = server.search(newcomer, k=1).matches[0]
        assert top.distance < 1e-4 and top.identity == truth, (top, truth)
    assert b.rename_identity(truth, "Bea", merge=True) >= 1
    for server in (a, b):
        server.refresh()
        assert server.search(newcomer, k=1).matches[0].identity == "Bea"


def test_a_removal_racing_a_reenrollment_of_the_same_bytes_keeps_the_file(
        home_with_model, tmp_path, db_url, monkeypatch):
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    a, b = Verifier.open(ws, sessions, "tiny"), Verifier.open(ws, sessions, "tiny")
    photo = png(2, 77)
    first = a.enroll("eve", photo)
    again = {}
    forget = Workspace.forget

    def racing_forget(self, path, sha256):
        again["thread"] = meanwhile(lambda: again.update(done=b.enroll("eve", photo)))
        forget(self, path, sha256)

    monkeypatch.setattr(Workspace, "forget", racing_forget)
    a.remove_photo(first.photo_id)
    monkeypatch.setattr(Workspace, "forget", forget)
    finished(again["thread"])
    with sessions() as s:
        row = s.get(Image, again["done"].photo_id)
        assert row is not None and row.status == ImageStatus.OK
        assert Path(row.path).is_file(), "the re-enrolled photo's file was deleted"
    assert b.face_chip(again["done"].photo_id) is not None


def test_every_enrolled_photo_keeps_its_file_through_many_races(home_with_model, tmp_path, db_url):
    """Removals and re-enrollments of the same bytes from two writers at once, many
    rounds: every photo the database holds has its file, and no file is left over."""
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    a, b = Verifier.open(ws, sessions, "tiny"), Verifier.open(ws, sessions, "tiny")
    photo = png(3, 99)

    def enrolled_photos() -> list[tuple[int, str]]:
        with sessions() as s:
            return s.execute(select(Image.id, Image.path).where(
                Image.status == ImageStatus.OK, Image.path.startswith(str(ws.enrolled_dir)))).all()

    for _ in range(8):
        held = a.enroll("kim", photo)
        threads = [threading.Thread(target=lambda: a.remove_photo(held.photo_id)),
                   threading.Thread(target=lambda: b.enroll("kim", photo))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stored = enrolled_photos()
        on_disk = {str(p) for p in ws.enrolled_dir.rglob("*.png")}
        assert {path for _, path in stored} <= on_disk, "a photo of the gallery lost its file"
        if not stored:
            assert not on_disk, "a file nobody needs was left"
        for photo_id, _ in stored:
            a.remove_photo(photo_id)
        assert not list(ws.enrolled_dir.rglob("*.png"))


def test_the_same_bytes_are_one_photo_whichever_way_they_came(home_with_model, tmp_path, db_url):
    ws, sessions, data = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    folder_photo = data / "person_00" / "img_00.png"
    with pytest.raises(EnrollConflict, match="already in the gallery as 'person_00'"):
        v.enroll("not_person_00", folder_photo.read_bytes())
    same = v.enroll("person_00", folder_photo.read_bytes())
    assert not same.created
    with sessions() as s:
        assert s.get(Image, same.photo_id).path == str(folder_photo)
        assert s.scalar(select(Identity.id).where(Identity.name == "not_person_00")) is None
    assert not list(ws.enrolled_dir.rglob("*.png"))
    names = {m.identity for m in v.search(folder_photo.read_bytes(), k=3).matches if m.distance < 1e-4}
    assert names == {"person_00"}


def test_names_of_removed_people_and_the_same_name_again(home_with_model, tmp_path, db_url):
    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    v.remove_identity("person_02")  # folder photos: their rows stay, marked removed
    assert v.rename_identity("person_01", "person_02") == 2  # nobody is person_02 now
    assert v.rename_identity("person_02", "person_02") == 2  # the same name: nothing to do
    probe = png(0, 5005)
    v.enroll("person_02", probe)
    assert v.search(probe, k=1).matches[0].identity == "person_02"


@pytest.mark.integration
def test_two_real_servers_race_without_a_wrong_name_a_lost_file_or_a_500(home_with_model, tmp_path, db_url):
    """The races through two `verifier serve` processes, 12 rounds (the benchmark
    `benchmarks/gallery_races.py` runs 60 and more)."""
    from tests.races import race_rounds

    _, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    counts = race_rounds(home_with_model, db_url, sessions, 12, png)
    sessions.kw["bind"].dispose()
    assert counts.clean, counts.describe()


def test_a_held_table_lock_makes_a_write_busy_not_stuck(home_with_model, tmp_path, db_url, monkeypatch):
    """Another connection holds a lock on the gallery: a write gives up with
    DatabaseBusy after a bounded wait (the service's 503 busy), searches go on, and
    the write succeeds once the lock is gone. SQLite: its write lock; PostgreSQL: a
    table lock (``lock_timeout`` bounds each statement)."""
    import sqlite3
    import time

    import sqlalchemy

    import storage.database
    from storage.errors import DatabaseBusy

    ws, sessions, _ = gallery_of(home_with_model, tmp_path, db_url)
    v = Verifier.open(ws, sessions, "tiny")
    probe = png(0, 5005)
    v.gallery_size  # noqa: B018 - loaded before the lock
    monkeypatch.setattr(storage.database, "BUSY_WAIT_S", 0.5)
    if db_url.startswith("sqlite"):
        holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1)
        holder.execute("BEGIN IMMEDIATE")
        release = holder.rollback
    else:
        engine = sqlalchemy.create_engine(db_url)
        conn = engine.connect()
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE gallery_change_head IN ACCESS EXCLUSIVE MODE")
        release = lambda: (conn.rollback(), conn.close(), engine.dispose())  # noqa: E731
    try:
        t = time.perf_counter()
        with pytest.raises(DatabaseBusy, match="busy"):
            v.enroll("locked_out", probe)
        assert time.perf_counter() - t < storage.database.LOCK_WAIT_S + 5
        assert v.search(probe, k=1).matches  # searches never wait for the lock
    finally:
        release()
    assert v.enroll("locked_out", probe).created
