"""The loaded Verifier: search, verify, enroll, remove, refresh, and many threads."""
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from jobs.embed import embed_gallery
from jobs.errors import EnrollConflict, IdentityNotFound, PhotoNotFound, QueryError
from jobs.live import Verifier
from storage import gallery, models
from storage.database import open_database
from storage.errors import WorkspaceError
from storage.index import load_index
from storage.schema import Embedding, Identity, Image
from storage.workspace import Workspace
from tests.photos import png
from verifier.errors import ImageError
from verifier.synthetic import write_identity_set


@pytest.fixture
def opened(home_with_model, tmp_path, db_url):
    ws = Workspace.open(home_with_model)
    sessions = open_database(db_url)
    data = write_identity_set(tmp_path / "gallery", identities=4, per_identity=3, size=32, seed=5)
    embed_gallery(ws, sessions, data, model="tiny", quiet=True)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = 0.5
    v = Verifier.open(ws, sessions, "tiny")
    yield v, data
    sessions.kw["bind"].dispose()


def brute_force(v: Verifier, vector: np.ndarray, k: int, live: dict[int, tuple[str, np.ndarray]]):
    """Identities ranked by their closest photo, from plain numpy over ``live``."""
    best: dict[str, float] = {}
    for identity, vec in live.values():
        d = float(np.sqrt(((vec - vector) ** 2).sum()))
        best[identity] = min(best.get(identity, np.inf), d)
    return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]


def db_state(v: Verifier) -> dict[int, tuple[str, np.ndarray]]:
    with v.sessions() as s:
        rows = s.execute(select(Embedding.id, Identity.name, Embedding.vector)
                         .join(Image, Embedding.image_id == Image.id)
                         .join(Identity, Image.identity_id == Identity.id)
                         .where(Embedding.model_id == v.model_id)).all()
    return {r[0]: (r[1], np.frombuffer(r[2], np.float32)) for r in rows}


def test_enroll_search_remove(opened):
    v, data = opened
    photo = png(7, 1)
    before = v.gallery_size
    result = v.enroll("newcomer", photo, source="upload.png")
    assert result.created and v.gallery_size == before + 1
    found = v.search(photo, k=2)
    assert found.matches[0].identity == "newcomer" and found.matches[0].distance < 1e-3
    assert found.matches[0].photo_id == result.photo_id and found.matches[0].passes
    stored = v.ws.root / found.matches[0].photo
    assert stored.read_bytes() == photo and stored.parent.parent == v.ws.enrolled_dir
    again = v.enroll("newcomer", photo)  # the same bytes: idempotent
    assert not again.created and again.photo_id == result.photo_id and v.gallery_size == before + 1
    with pytest.raises(EnrollConflict, match="already enrolled as 'newcomer'"):
        v.enroll("someone else", photo)
    v.remove_photo(result.photo_id)
    assert "newcomer" not in [m.identity for m in v.search(photo, k=5).matches]
    assert not stored.exists() and v.gallery_size == before
    with pytest.raises(PhotoNotFound):
        v.remove_photo(result.photo_id)
    v.enroll("newcomer", photo)  # enrolling a removed photo again brings it back
    assert v.search(photo, k=1).matches[0].identity == "newcomer"
    assert v.remove_identity("newcomer").photos == 1
    with pytest.raises(IdentityNotFound):
        v.remove_identity("newcomer")
    assert v.save()
    with v.sessions() as s:
        ids = gallery.model_ids(s, v.model_id)
    load_index(v.ws.index_path("tiny"), model="tiny", ids=ids)  # the snapshot equals the database


@pytest.mark.parametrize("name", ["", "a/b", "..", "x\\y", "tab\tname", " padded", "n" * 256])
def test_bad_identity_names_are_refused_before_anything_is_stored(opened, name):
    v, _ = opened
    size = v.gallery_size
    with pytest.raises(WorkspaceError, match="invalid identity name"):
        v.enroll(name, png(1, 1))
    assert v.gallery_size == size and not v.ws.enrolled_dir.exists()


def test_bad_bytes_are_refused_and_nothing_changes(opened):
    v, _ = opened
    size = v.gallery_size
    for data, reason in [(b"", "empty"), (b"not an image", "not_an_image"),
                         (png(1, 1)[:60], "truncated")]:
        with pytest.raises(ImageError) as err:
            v.enroll("person_x", data)
        assert err.value.reason == reason
    assert v.gallery_size == size and len(db_state(v)) == size


def test_verify_bytes_and_gallery_ids(opened):
    v, data = opened
    a = (data / "person_01" / "img_00.png").read_bytes()
    b = (data / "person_02" / "img_00.png").read_bytes()
    same = v.verify(a, a)
    assert same.same and same.distance < 1e-3 and same.threshold == 0.5
    match = v.search(a, k=1).matches[0]
    by_id = v.verify(match.photo_id, a)
    assert by_id.same and by_id.distance < 1e-3 and by_id.photo_a == f"photo {match.photo_id}"
    other = v.search(b, k=1).matches[0].photo_id
    both = v.verify(match.photo_id, other, threshold=0.0)
    assert not both.same and both.distance == pytest.approx(v.verify(a, b).distance, abs=1e-4)
    with pytest.raises(PhotoNotFound):
        v.verify(10 ** 9, a)
    v.threshold = None
    with pytest.raises(QueryError, match="verifier evaluate"):
        v.verify(a, b)


def test_random_enrolls_and_removals_match_brute_force(opened):
    v, _ = opened
    rng = np.random.default_rng(3)
    enrolled: list[int] = []
    for step in range(200):
        if enrolled and rng.random() < 0.35:
            v.remove_photo(enrolled.pop(int(rng.integers(len(enrolled)))))
        else:
            enrolled.append(v.enroll(f"p{int(rng.integers(6))}", png(int(rng.integers(6)), 100 + step))
                            .photo_id)
    live = db_state(v)
    assert sorted(live) == v._gallery().ids().tolist()
    for seed in range(5):
        vector = v.embed([v.prepare(png(seed, 999 + seed))])[0]
        got, _ = v.rank(vector, 4)
        want = brute_force(v, vector, 4, live)
        assert [m.identity for m in got] == [w[0] for w in want]
        np.testing.assert_allclose([m.distance for m in got], [w[1] for w in want], atol=1e-4)


def test_threads_search_while_another_writes(opened):
    v, data = opened
    probes = [(data / f"person_0{i % 4}" / f"img_0{i % 3}.png").read_bytes() for i in range(8)]
    vectors = [v.embed([v.prepare(p)])[0] for p in probes]
    states = {v._gallery().version: db_state(v)}
    answers, errors = [], []

    def reader(i: int) -> None:
        try:
            for n in range(50):
                r = v.search(probes[(i + n) % 8], k=3)
                answers.append(((i + n) % 8, r.version, [(m.identity, m.distance) for m in r.matches]))
        except Exception as exc:  # noqa: BLE001 - collected and reported
            errors.append(exc)

    def writer() -> None:
        try:
            ids = []
            for n in range(40):
                if ids and n % 3 == 2:
                    version = v.remove_photo(ids.pop(0)).version
                else:
                    e = v.enroll(f"w{n % 5}", png(n % 5, 500 + n))
                    ids.append(e.photo_id)
                    version = e.version
                states[version] = db_state(v)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(answers) == 400
    assert len({version for _, version, _ in answers}) > 1, "the writer never overlapped a search"
    for probe, version, got in answers:
        want = brute_force(v, vectors[probe], 3, states[version])
        assert [g[0] for g in got] == [w[0] for w in want], (version, got, want)
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], atol=1e-4)
    assert sorted(db_state(v)) == v._gallery().ids().tolist()


def test_ranking_widens_past_the_first_window(home_with_model, tmp_path):
    """One identity fills the first search window; the others are still found."""
    ws = Workspace.open(home_with_model)
    sessions = open_database(ws.database_url)
    v = Verifier.open(ws, sessions, "tiny")
    rng = np.random.default_rng(0)
    probe = rng.normal(size=v.loaded.dimension).astype(np.float32)

    def direction():
        u = rng.normal(size=probe.shape)
        return (u / np.linalg.norm(u)).astype(np.float32)

    rows = [("crowd", 1.0 + i / 1000) for i in range(150)] + [("second", 2.0), ("third", 3.0)]
    with sessions.begin() as s:
        for n, (name, dist) in enumerate(rows):
            image = Image(path=f"/g/{name}/{n}.png", sha256=f"{n:064x}",
                          identity_id=gallery.identity_id(s, name), status="ok")
            s.add(image)
            s.flush()
            s.add(Embedding(image_id=image.id, model_id=v.model_id,
                            vector=gallery.vector_to_bytes(probe + dist * direction())))
    v.refresh()
    assert v.gallery_size == 152
    matches, _ = v.rank(probe, 3)
    assert [m.identity for m in matches] == ["crowd", "second", "third"]
    np.testing.assert_allclose([m.distance for m in matches], [1.0, 2.0, 3.0], atol=1e-4)


def test_refresh_picks_up_another_process(opened, tmp_path):
    v, _ = opened
    assert v.gallery_size == 12  # loaded now, before the other process writes
    more = write_identity_set(tmp_path / "more", identities=2, per_identity=2, size=32, seed=9)
    for folder in more.iterdir():
        folder.rename(more / f"late_{folder.name}")
    embed_gallery(v.ws, v.sessions, more, model="tiny", quiet=True)  # as another process would
    probe = (more / "late_person_01" / "img_01.png").read_bytes()
    assert v.search(probe, k=1).matches[0].identity != "late_person_01"
    caught = v.refresh()
    assert caught.added == 4
    assert v.search(probe, k=1).matches[0].identity == "late_person_01"
    with v.sessions.begin() as s:  # another process removes one photo
        image_id = s.scalar(select(Embedding.image_id).where(
            Embedding.id == s.scalar(select(func.max(Embedding.id)))))
        gallery.remove_photos(s, [image_id], v.ws.is_enrolled)
    assert v.refresh().removed == 1


def test_search_without_gallery(home_with_model):
    ws = Workspace.open(home_with_model)
    v = Verifier.open(ws, open_database(ws.database_url), "tiny")
    with pytest.raises(QueryError, match="never embedded"):
        v.search(png(0, 0))


def test_a_large_k_looks_at_a_bounded_window(opened, monkeypatch):
    import jobs.ranking as ranking

    v, data = opened
    monkeypatch.setattr(ranking, "SEARCH_LIMIT", 5)
    index, asked = v._gallery(), []
    real = index.search
    monkeypatch.setattr(index, "search", lambda q, k: (asked.append(k), real(q, k))[1])
    found = v.search((data / "person_00" / "img_00.png").read_bytes(), k=100)
    assert max(asked) <= 5 and 1 <= len(found.matches) <= 4  # not the whole 12-photo gallery
    assert found.matches[0].identity == "person_00"
