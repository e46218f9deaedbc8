"""Face quality on seed photos (dlib-resnet, MTCNN): answers carry it, a minimum
refuses poor faces at enrollment (library, service, folder embed) and reports are
split by it (skipped where the seed photos are absent)."""
import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from jobs.cli import main
from tests.conftest import need_seed_faces_and_dlib
from tests.groups import dlib_home, seed
from verifier.errors import PoorQuality

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    need_seed_faces_and_dlib()
    ws, sessions, _ = dlib_home(tmp_path_factory.mktemp("quality"), ("obama", "lula"))
    yield ws, sessions
    sessions.kw["bind"].dispose()


def small(path, width=45) -> bytes:
    """The photo shrunk so that its face is about 30-40 px wide."""
    image = PILImage.open(path).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_answers_carry_quality_and_a_minimum_refuses_poor_faces(home):
    from jobs.live import Verifier
    from storage.schema import Image

    v = Verifier.open(*home, "dlib")
    good = seed("messi", 0).read_bytes()
    poor = small(seed("messi", 1), width=90)
    faces = v.search(good, 1).faces
    assert faces[0].quality.score > 0.8 and faces[0].as_dict()["quality"]["reasons"] == []
    rated = v.search(poor, 1).faces[0].quality
    assert rated.score < 0.5 and any("px wide" in r for r in rated.reasons())
    v.min_quality = 0.6
    with pytest.raises(PoorQuality) as caught:
        v.enroll("messi", poor, source="tiny.png")
    assert "tiny.png: face quality" in str(caught.value) and "px wide" in str(caught.value)
    done = v.enroll("messi", good, source="good.png")
    with home[1]() as s:
        assert s.get(Image, done.photo_id).quality == pytest.approx(faces[0].quality.score)


def test_the_service_answers_poor_quality_with_the_reasons(home):
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app

    app = create_app(*home, Settings(model="dlib", auth=False, min_quality=0.6))
    with TestClient(app) as client:
        r = client.post("/v1/identities/lula/photos",
                        files={"photos": ("small.png", small(seed("lula", 5), width=90), "image/png")})
        assert r.status_code == 422 and r.json()["code"] == "poor_quality"
        assert r.json()["quality"] < 0.6 and any("px wide" in x for x in r.json()["reasons"])
        found = client.post("/v1/detect", files={"photo": ("g.png", seed("lula", 5).read_bytes(), "image/png")})
        assert found.json()["faces"][0]["quality"]["score"] > 0.5


def test_embed_min_quality_skips_poor_photos(home, tmp_path):
    ws, _ = home
    folder = tmp_path / "g" / "mbappe"
    folder.mkdir(parents=True)
    (folder / "good.png").write_bytes(seed("mbappe", 0).read_bytes())
    (folder / "small.png").write_bytes(small(seed("mbappe", 1), width=50))
    r = CliRunner().invoke(main, ["--home", str(ws.root), "-q", "embed", "--data", str(tmp_path / "g"),
                                  "--min-quality", "0.6", "--json"])
    assert r.exit_code == 0, r.output
    skipped = json.loads(r.output)["skipped"]
    assert list(skipped) == [str(folder / "small.png")]
    assert skipped[str(folder / "small.png")].startswith("poor_quality: face ")


def blurred(path, radius_share=0.05) -> bytes:
    """The photo out of focus: a Gaussian of ``radius_share`` of its width."""
    from PIL import ImageFilter

    image = PILImage.open(path).convert("RGB")
    image = image.filter(ImageFilter.GaussianBlur(image.width * radius_share))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_a_face_under_the_default_floor_gets_no_name(home, tmp_path):
    """Query, verify and the service answer a blurred face unknown (poor_quality)
    even where its nearest person is within the threshold; 0 judges it anyway."""
    from jobs.answers import POOR_QUALITY
    from jobs.live import Verifier
    from verifier.defaults import DEFAULT_MIN_QUALITY

    v = Verifier.open(*home, "dlib")
    assert v.min_quality == DEFAULT_MIN_QUALITY > 0
    poor = blurred(seed("obama", 0))
    answer = v.search(poor, 1)
    assert answer.faces[0].quality.score < DEFAULT_MIN_QUALITY
    assert answer.unknown and answer.reason == POOR_QUALITY
    assert answer.matches and not any(m.passes for m in answer.matches)
    assert answer.as_dict()["faces"][0]["reason"] == POOR_QUALITY
    check = v.verify(poor, seed("obama", 0).read_bytes())
    assert not check.same and check.reason == POOR_QUALITY
    v.min_quality = 0.0
    assert v.search(poor, 1).reason is None
    (tmp_path / "poor.png").write_bytes(poor)
    base = ["--home", str(home[0].root), "-q"]
    r = CliRunner().invoke(main, base + ["query", str(tmp_path / "poor.png")])
    assert r.exit_code == 0 and "unknown (poor quality" in r.output, r.output
    r = CliRunner().invoke(main, base + ["verify", str(tmp_path / "poor.png"), str(seed("obama", 0))])
    assert r.exit_code == 1 and "unknown (poor quality" in r.output and "--min-quality 0" in r.output
    from fastapi.testclient import TestClient

    from jobs.api import Settings, create_app

    with TestClient(create_app(*home, Settings(model="dlib", auth=False))) as client:
        body = client.post("/v1/search", files={"photo": ("p.png", poor, "image/png")}).json()
        assert body["unknown"] is True and body["reason"] == POOR_QUALITY
