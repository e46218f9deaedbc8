"""Face quality on hand-built faces with exact parts, and the seeded degradations."""
import numpy as np
import pytest

from verifier import degrade
from verifier.errors import PoorQuality
from verifier.faces import Face
from verifier.quality import (FRONTAL_YAW, MAX_YAW, Quality, face_quality, require_quality,
                              sharpness, yaw)


def face(width=100.0, nose_offset=0.0, confidence=0.999, left=10.0, top=10.0):
    """A face whose eyes are 40 px apart, the nose ``nose_offset`` eye-distances off centre."""
    cx, cy = left + width / 2, top + width / 2
    marks = ((cx - 20, cy - 10), (cx + 20, cy - 10), (cx + 40 * nose_offset, cy + 5),
             (cx - 15, cy + 20), (cx + 15, cy + 20))
    return Face((left, top, width, width), confidence, marks)


def checkerboard(size=200, cell=50):
    yy, xx = np.mgrid[0:size, 0:size]
    board = (((yy // cell) + (xx // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def test_pose_from_the_nose_offset():
    assert yaw(face(nose_offset=0.0)) == pytest.approx(0.0)
    assert yaw(face(nose_offset=0.3)) == pytest.approx(0.3)
    image = checkerboard()
    assert face_quality(image, face(nose_offset=FRONTAL_YAW)).pose == pytest.approx(1.0)
    assert face_quality(image, face(nose_offset=MAX_YAW)).pose == pytest.approx(0.0)
    middle = (FRONTAL_YAW + MAX_YAW) / 2
    assert face_quality(image, face(nose_offset=middle)).pose == pytest.approx(0.5)


def test_size_and_confidence_ramps_and_the_weakest_part_wins():
    image = checkerboard()
    q = face_quality(image, face(width=55.0))
    assert q.size == pytest.approx(0.5) and q.width == 55
    assert q.score == min(q.confidence, q.size, q.sharpness, q.pose) == pytest.approx(0.5)
    assert face_quality(image, face(width=30.0)).size == 0.0
    assert face_quality(image, face(width=120.0)).size == 1.0
    from verifier.quality import HIGH_CONFIDENCE, LOW_CONFIDENCE

    middle = (LOW_CONFIDENCE + HIGH_CONFIDENCE) / 2
    assert face_quality(image, face(confidence=middle)).confidence == pytest.approx(0.5)
    assert face_quality(image, face(confidence=LOW_CONFIDENCE)).confidence == 0.0


def test_sharpness_falls_with_blur_and_ignores_contrast():
    from PIL import Image, ImageFilter

    board = checkerboard()
    box = (10.0, 10.0, 150.0, 150.0)
    sharp = sharpness(board, box)
    blurred = np.asarray(Image.fromarray(board).filter(ImageFilter.GaussianBlur(6)))
    assert sharpness(blurred, box) < sharp / 5
    dim = (board.astype(np.float32) * 0.3).astype(np.uint8)  # darker, same edges
    assert sharpness(dim, box) == pytest.approx(sharp, rel=0.05)
    assert sharpness(np.full((50, 50, 3), 128, np.uint8), (0, 0, 50, 50)) == 0.0
    assert sharpness(board, (300.0, 300.0, 10.0, 10.0)) == 0.0  # off the photo


def test_reasons_and_refusal():
    q = Quality(0.2, confidence=1.0, size=0.2, sharpness=0.3, pose=1.0, width=38)
    assert q.reasons() == ["face 38 px wide", "blurred"]
    assert q.as_dict()["reasons"] == ["face 38 px wide", "blurred"]
    with pytest.raises(PoorQuality) as caught:
        require_quality(q, 0.5, "small.jpg")
    assert caught.value.reasons == ["face 38 px wide", "blurred"] and caught.value.score == 0.2
    assert "small.jpg: face quality 0.20 is below the minimum 0.50" in str(caught.value)
    require_quality(q, 0.0)  # no minimum
    require_quality(q, 0.2)  # at the minimum
    require_quality(None, 0.9)  # the whole photo is not rated


def test_degradations_are_seeded_and_do_what_they_say():
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    image = np.random.default_rng(0).integers(60, 200, (240, 200, 3)).astype(np.uint8)
    box = (50.0, 60.0, 100.0, 120.0)
    marks = {"left_eye": (80.0, 100.0), "right_eye": (120.0, 100.0)}
    for name, fn in degrade.DEGRADATIONS.items():
        a, b = fn(image, rng(), box, marks), fn(image, rng(), box, marks)
        assert a.dtype == np.uint8 and a.ndim == 3 and (a == b).all(), name
    gray = degrade.grayscale(image, rng(), box, marks)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    lit = degrade.side_light(image, rng(), box, marks).astype(float)
    assert abs(lit[:, :50].mean() - lit[:, 150:].mean()) > 40  # one side much darker
    small = degrade.low_resolution(image, rng(), box, marks)
    assert 40 <= 100 * small.shape[1] / 200 <= 60
    band = degrade.eye_band(image, rng(), box, marks)
    assert band[100, 60:140].max() < 30 and (band[200] == image[200]).all()
    blurred = degrade.gaussian_blur(image, rng(), box, marks)
    assert blurred.astype(float).std() < image.astype(float).std()
    moved = degrade.motion_blur(image, rng(), box, marks)
    assert moved.shape == image.shape and moved.astype(float).std() < image.astype(float).std()
