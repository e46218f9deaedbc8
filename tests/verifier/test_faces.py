import numpy as np
import pytest

from verifier.errors import NoFaceFound
from verifier.faces import Face, align, most_prominent, similarity_transform, template_points


def _blobs(points, shape=(400, 400), sigma=3.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.zeros(shape)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    img = (img / img.max() * 255).astype(np.uint8)
    return np.stack([img] * 3, -1)


def _centroid(gray, x, y, r=8):
    x0, y0 = int(round(x)), int(round(y))
    win = gray[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1].astype(float)
    wy, wx = np.mgrid[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1]
    return (win * wx).sum() / win.sum(), (win * wy).sum() / win.sum()


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.4, 1.3, np.array([7.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("size,padding,angle", [(150, 0.25, 0.3), (64, 0.4, -0.6), (224, 0.1, 0.0)])
def test_alignment_puts_landmarks_on_the_template(size, padding, angle):
    """Landmarks drawn in a photo at a known rotation/scale land on the template."""
    target = template_points(size, padding)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = target @ rot.T * 1.6 + np.array([60.0, 40.0])
    chip = align(_blobs(landmarks), landmarks, size, padding)
    assert chip.shape == (size, size, 3)
    for (x, y) in target[:2]:  # the eyes
        cx, cy = _centroid(chip[..., 0], x, y, r=min(8, size // 16))
        assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0


def test_dlib_chip_geometry():
    # with dlib's padding the eyes sit where dlib's 150 px chips put them
    eyes = template_points(150, 0.25)[:2]
    assert eyes[0] == pytest.approx([(0.2254918 + 0.25) / 1.5 * 150, (0.2159903 + 0.25) / 1.5 * 150])
    assert eyes[1][0] - eyes[0][0] == pytest.approx((0.7547613 - 0.2254918) / 1.5 * 150)


def test_most_prominent():
    small = Face((0, 0, 10, 10), 0.99, ((0, 0),) * 5)
    big = Face((5, 5, 40, 50), 0.9, ((0, 0),) * 5)
    assert most_prominent([small, big]) is big
    with pytest.raises(NoFaceFound):
        most_prominent([])
    assert Face.from_dict(big.as_dict()) == big


@pytest.mark.integration
def test_fast_mtcnn_finds_the_same_faces_as_the_package(seed_faces):
    """Networks on ONNX Runtime change speed, not results: every seed photo's faces
    and landmarks agree with the package's own detector within a pixel."""
    from mtcnn import MTCNN
    from PIL import Image

    from verifier.faces import LANDMARKS, MTCNNDetector

    eager = MTCNN()
    fast = MTCNNDetector()
    worst = 0.0
    photos = sorted(seed_faces.rglob("*.png"))
    assert len(photos) == 128
    for path in photos:
        image = np.asarray(Image.open(path).convert("RGB"))
        mine = fast.detect(image)
        theirs = sorted(eager.detect_faces(image, min_face_size=20),
                        key=lambda f: -f["box"][2] * f["box"][3])
        assert len(mine) == len(theirs), path
        for a, b in zip(mine, theirs):
            ref = np.array([b["keypoints"][n] for n in LANDMARKS], dtype=float)
            worst = max(worst, float(np.abs(np.array(a.landmarks) - ref).max()))
    assert worst < 1.0, worst


def test_detectors_by_name_and_the_smallest_face_in_a_scaled_copy(monkeypatch):
    """A model's detector name gives its smallest face; in the copy of a large photo
    the smallest face shrinks with the copy but never under the package's 20 px."""
    from verifier.faces import MTCNNDetector

    assert MTCNNDetector.named("mtcnn").min_face_size == 20
    assert MTCNNDetector.named("mtcnn-30px").min_face_size == 30
    with pytest.raises(ValueError, match="unknown face detector"):
        MTCNNDetector.named("yolo")
    asked = []
    fake = type("Pipe", (), {"detect": lambda self, image, min_face_size, **settings: asked.append(
        (image.shape[:2], min_face_size, settings)) or []})()
    monkeypatch.setattr(MTCNNDetector, "_model", lambda self: fake)
    for name, side, want in (("mtcnn", 800, 20), ("mtcnn-30px", 800, 30), ("mtcnn-30px", 2400, 20),
                             ("mtcnn-30px", 1920, 25), ("mtcnn", 3200, 20), ("mtcnn-fast", 800, 20 / 0.709),
                             ("mtcnn-fast", 1920, 20 / 0.709 / 1.2)):
        MTCNNDetector.named(name).detect(np.zeros((side // 2, side, 3), np.uint8))
        assert asked[-1][1] == pytest.approx(want), (name, side, asked[-1])
        assert asked[-1][2] == ({"nms_onet": 0.5} if name == "mtcnn-fast" else {})


@pytest.mark.integration
@pytest.mark.parametrize("detector", ["mtcnn-30px", "mtcnn-fast"])
def test_the_30px_detectors_find_the_packages_largest_face_on_every_seed_photo(seed_faces, detector):
    """``mtcnn-30px`` (the pyramid from 30 px) and ``mtcnn-fast`` (the default: the
    package's pyramid without its finest level, a face mostly inside a surer one
    dropped) against the package-equal detector on the 128 seed photos: a face
    wherever it finds one, the largest in the same place, as sure as the package's
    least sure face. Other pyramid levels propose other windows, so boxes and
    landmarks move a little (measured for ``mtcnn-30px``: landmarks by a median 1.8%
    of the face's width, at most 11% on three photos; the pair EER does not suffer,
    ``benchmarks/faces_speed.py``). ``mtcnn-fast`` takes no chin for a second face
    (messi's Selection_023, where ``mtcnn-30px`` does) and never reports a face lying
    more than half inside another."""
    from PIL import Image

    from verifier.faces import MTCNNDetector, box_overlap

    plain, coarse = MTCNNDetector.named("mtcnn"), MTCNNDetector.named(detector)
    shifts, extra = [], {}
    for path in sorted(seed_faces.rglob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        a, b = plain.detect(image), coarse.detect(image)
        assert a and b, path
        assert box_overlap(a[0].box, b[0].box) > 0.6, path
        assert b[0].confidence >= 0.86, path
        shifts.append(np.abs(np.array(a[0].landmarks) - np.array(b[0].landmarks)).max() / a[0].box[2])
        assert shifts[-1] < 0.12, (path, shifts[-1])
        extra[f"{path.parent.name}/{path.name}"] = len(b) - 1
        if detector == "mtcnn-fast":
            for small in b[1:]:
                x, y, w, h = small.box
                big = b[0].box
                inside = (max(0, min(x + w, big[0] + big[2]) - max(x, big[0]))
                          * max(0, min(y + h, big[1] + big[3]) - max(y, big[1])))
                assert inside <= 0.5 * w * h, path
    assert len(shifts) == 128 and np.median(shifts) < 0.03
    assert extra["messi/Selection_023.png"] == (0 if detector == "mtcnn-fast" else 1)


@pytest.mark.integration
def test_a_huge_photo_is_searched_small_and_aligned_at_full_resolution(seed_faces, tmp_path):
    """A 6000x4000 photo: detected in a bounded copy, landmarks mapped back, and the
    chip cut from the full-resolution pixels."""
    import io

    from PIL import Image

    from verifier.preparation import PhotoPreparer
    from verifier.faces import MTCNNDetector

    face = Image.open(sorted((seed_faces / "obama").iterdir())[0]).convert("RGB")
    small = np.asarray(face)
    factor = 2400 / max(face.size)
    canvas = Image.new("RGB", (6000, 4000), (90, 110, 130))
    canvas.paste(face.resize((round(face.width * factor), round(face.height * factor)),
                             Image.BICUBIC), (3000, 1000))
    big = np.asarray(canvas)
    detector = MTCNNDetector()
    reference = detector.detect(small)[0]
    found = detector.detect(big)
    assert len(found) == 1
    expected = np.array(reference.landmarks) * factor + (3000, 1000)
    eye_distance = np.linalg.norm(expected[1] - expected[0])
    assert np.abs(np.array(found[0].landmarks) - expected).max() < 0.05 * eye_distance
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=92)
    prepared = PhotoPreparer(150, "mtcnn").prepare_bytes(buf.getvalue())
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert prepared.status == "face"
    np.testing.assert_array_equal(
        prepared.pixels, align(decoded, detector.detect(decoded)[0].landmarks, 150))


@pytest.mark.parametrize("where", [(0.5, 0.5), (0.02, 0.03), (0.97, 0.9)])
def test_align_samples_only_the_face_region_with_the_same_result(where):
    """The chip from a crop around the face equals Pillow's transform of the whole photo."""
    from PIL import Image

    from verifier.faces import align, similarity_transform, template_points

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (700, 900, 3), dtype=np.uint8)
    cx, cy = where[0] * 900, where[1] * 700
    landmarks = [(cx - 30, cy - 20), (cx + 30, cy - 22), (cx + 2, cy + 5), (cx - 22, cy + 30),
                 (cx + 24, cy + 29)]
    chip = align(image, landmarks, 150, 0.25)
    m = similarity_transform(np.asarray(landmarks, np.float64), template_points(150, 0.25))
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    (a, b, c), (d, e, f) = inv
    whole = np.asarray(Image.fromarray(image).transform(
        (150, 150), Image.AFFINE, (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e)),
        resample=Image.BILINEAR))
    assert chip.shape == (150, 150, 3) and np.array_equal(chip, whole)


def test_the_detectors_weights_are_checked_against_their_pinned_sha256(tmp_path):
    """The installed package's weight files pass; a changed or missing one is refused,
    naming the file."""
    from verifier.mtcnn_pipeline import WEIGHTS_SHA256, WeightsMismatch, check_weights

    check_weights()
    for name in WEIGHTS_SHA256:
        (tmp_path / name).write_bytes(b"weights")
    with pytest.raises(WeightsMismatch, match="pnet.lz4: SHA-256 .* is not the pinned"):
        check_weights(tmp_path)
    (tmp_path / "pnet.lz4").unlink()
    with pytest.raises(WeightsMismatch, match="pnet.lz4: cannot be read"):
        check_weights(tmp_path)


def test_changed_weights_stop_the_detector_with_the_release_to_reinstall(monkeypatch):
    """A package whose weights are not the pinned ones is a setup error that names
    the file and the release to install, not a photo without a face."""
    import verifier.mtcnn_pipeline as pipeline
    from verifier.errors import DetectorUnavailable
    from verifier.faces import MTCNNDetector

    def changed(folder=None):
        raise pipeline.WeightsMismatch("/site/mtcnn/assets/weights/pnet.lz4: SHA-256 00 is not the pinned ea")

    monkeypatch.setattr(pipeline, "check_weights", changed)
    monkeypatch.setattr(MTCNNDetector, "_instance", None)
    with pytest.raises(DetectorUnavailable, match=r"pnet.lz4: SHA-256 .*pip install mtcnn==1\.0\.0 "):
        MTCNNDetector.named("mtcnn-fast").detect(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.integration
def test_a_degraded_photo_gives_the_face_found_again_in_it(seed_faces):
    """Training's hard photos: each degradation of the whole photo, the face detected
    again and aligned as a query of that photo would be; None where it is not found."""
    from verifier.degrade import DEGRADATIONS, grayscale
    from verifier.faces import LANDMARKS, MTCNNDetector
    from verifier.images import decode_image
    from verifier.preparation import PhotoPreparer

    data = sorted((seed_faces / "obama").iterdir())[0].read_bytes()
    preparer = PhotoPreparer(150, "mtcnn-fast")
    wanted = [(name, np.random.default_rng(k)) for k, name in enumerate(DEGRADATIONS)]
    prepared, faces = preparer.prepare_degraded(data, "obama", wanted)
    assert prepared.status == "face" and len(faces) == len(DEGRADATIONS)
    assert sum(f is not None for f in faces) >= len(DEGRADATIONS) - 1  # the eye band may hide it
    image = decode_image(data)
    gray = grayscale(image, np.random.default_rng(0), prepared.face.box,
                     dict(zip(LANDMARKS, prepared.face.landmarks)))
    again = MTCNNDetector.named("mtcnn-fast").detect(gray)[0]
    np.testing.assert_array_equal(faces[0], align(gray, again.landmarks, 150))
    small = faces[list(DEGRADATIONS).index("low_resolution")]
    assert small is not None and small.shape == prepared.pixels.shape
    # no face in the photo: nothing to find again
    blank = PhotoPreparer(150, "mtcnn-fast").prepare_degraded(_png(np.full((80, 80, 3), 128, np.uint8)),
                                                               "blank", wanted[:2])
    assert blank[0].status == "no_face" and blank[1] == [None, None]


def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()
