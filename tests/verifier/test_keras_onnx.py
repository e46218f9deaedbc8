"""Keras networks translated to ONNX compute what Keras computes; MTCNN's cascade on
ONNX Runtime returns what the ``mtcnn`` package returns."""
import numpy as np
import pytest

from verifier.keras_onnx import OnnxMismatch, to_session


def _small_network(side):
    """Every translated layer kind, with odd sizes where 'same' pooling pads."""
    import keras
    from keras import layers as L

    inputs = keras.Input((side, side, 3))
    x = L.Conv2D(6, 3, activation="linear")(inputs)
    x = L.PReLU(shared_axes=[1, 2])(x)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    x = L.Conv2D(8, 2)(x)
    x = L.PReLU(shared_axes=[1, 2])(x)
    x = L.MaxPooling2D(2, 2, padding="valid")(x)
    x = L.Permute((2, 1, 3))(x)
    x = L.Flatten()(x)
    x = L.Dense(12)(x)
    x = L.PReLU()(x)
    heads = [L.Dense(4)(x), L.Dense(3, activation="softmax")(x)]
    model = keras.Model(inputs, heads)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("side", [23, 24])
def test_a_translated_network_computes_what_keras_computes(side):
    model = _small_network(side)
    session = to_session(model, side)
    x = np.random.default_rng(2).uniform(-1, 1, (5, side, side, 3)).astype(np.float32)
    for got, want in zip(session.run(None, {"input": x}), model(x)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_a_fully_convolutional_network_takes_any_size():
    import keras
    from keras import layers as L

    inputs = keras.Input((None, None, 3))
    x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(5, 3)(inputs))
    x = L.MaxPooling2D(2, 2, padding="same")(x)  # odd sizes keep their last row
    model = keras.Model(inputs, [L.Conv2D(2, 1, activation="softmax")(x), L.Conv2D(4, 1)(x)])
    session = to_session(model, None)
    for h, w in [(12, 12), (31, 17), (64, 45)]:
        x = np.random.default_rng(h).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
        for got, want in zip(session.run(None, {"input": x}), model(x)):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_an_untranslated_layer_is_refused():
    import keras
    from keras import layers as L

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, [L.Conv2D(2, 3)(L.BatchNormalization()(inputs))])
    with pytest.raises(OnnxMismatch, match="BatchNormalization"):
        to_session(model, 8)


def _cartoon_face(h, w, seed):
    """A drawn face (skin ellipse, eyes, nose, mouth) on a plain background."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(image)
    s = min(h, w) * rng.uniform(0.45, 0.7)
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    draw.ellipse([cx - s / 2, cy - s * 0.65, cx + s / 2, cy + s * 0.65], fill=(224, 172, 140))
    for ex in (-0.2, 0.2):
        draw.ellipse([cx + (ex - 0.08) * s, cy - 0.23 * s, cx + (ex + 0.08) * s, cy - 0.13 * s],
                     fill=(40, 30, 30))
    draw.polygon([(cx, cy - s * 0.05), (cx - s * 0.07, cy + s * 0.12), (cx + s * 0.07, cy + s * 0.12)],
                 fill=(190, 130, 110))
    draw.chord([cx - s * 0.22, cy + s * 0.18, cx + s * 0.22, cy + s * 0.38], 0, 180, fill=(150, 60, 60))
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.5))).astype(float)
    return np.clip(pixels + rng.normal(0, 4, pixels.shape), 0, 255).astype(np.uint8)


def test_the_cascade_returns_what_the_package_returns_on_synthetic_photos():
    """Drawn faces of several sizes, with thresholds low enough that every stage
    passes candidates on: boxes, landmarks and scores are the package's."""
    from mtcnn import MTCNN

    from verifier.mtcnn_pipeline import MTCNNPipeline

    package = MTCNN()
    fast = MTCNNPipeline.from_package(package)
    low = {"threshold_pnet": 0.3, "threshold_rnet": 0.1, "threshold_onet": 0.1}
    found = 0
    for k, (h, w) in enumerate([(97, 120), (160, 160), (233, 181), (300, 260)]):
        image = _cartoon_face(h, w, k)
        want = package.detect_faces(image, **low)
        got = fast.detect(image, **low)
        found += len(want)
        assert [f["box"] for f in got] == [f["box"] for f in want]
        assert [f["keypoints"] for f in got] == [f["keypoints"] for f in want]
        np.testing.assert_allclose([f["confidence"] for f in got], [f["confidence"] for f in want],
                                   atol=1e-4)
        assert fast.detect(image) == package.detect_faces(image)  # default thresholds
    assert found >= 4


@pytest.mark.parametrize("shape,size", [((300, 260), (180, 156)), ((393, 392), (94, 93)),
                                        ((222, 206), (17, 16)), ((50, 60), (50, 60)), ((40, 30), (12, 25)),
                                        ((300, 300), (12, 200)), ((61, 400), (20, 100))])
def test_area_resize_is_tensorflows(shape, size):
    import tensorflow as tf

    from verifier.mtcnn_pipeline import resize_area

    image = np.random.default_rng(sum(shape)).uniform(-1, 1, (*shape, 3)).astype(np.float32)
    want = tf.raw_ops.ResizeArea(images=image[None], size=list(size)).numpy()[0]
    np.testing.assert_allclose(resize_area(image, *size), want, atol=5e-5)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")  # the zero-area box
@pytest.mark.parametrize("method,sort", [("union", True), ("union", False), ("min", True)])
def test_suppression_is_the_packages(method, sort):
    """Seeded random boxes (clusters, ties in score, a degenerate box, landmark
    columns): the same boxes kept, in the same order, as the package's own NMS."""
    from mtcnn.utils.bboxes import smart_nms_from_bboxes

    from verifier.mtcnn_pipeline import suppress

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 17, 300):
        centres = rng.uniform(0, 200, (max(n // 5, 1), 2))[rng.integers(0, max(n // 5, 1), n)]
        xy = centres + rng.normal(0, 6, (n, 2))
        side = rng.uniform(10, 60, (n, 1))
        boxes = np.hstack([np.zeros((n, 1)), xy, xy + side, rng.choice([0.7, 0.8, 0.9], (n, 1)),
                           rng.uniform(0, 200, (n, 10))])
        if n > 3:
            boxes[3, 3:5] = boxes[3, 1:3]  # zero area
        want = smart_nms_from_bboxes(boxes, threshold=0.5, method=method, initial_sort=sort)
        got = suppress(boxes, 0.5, method, initial_sort=sort)
        if n == 0:  # the package answers an empty (0, 6) array
            assert len(got) == len(want) == 0
            continue
        assert np.array_equal(got, want)


@pytest.mark.parametrize("side", [1, 24, 48])
def test_crop_and_resize_is_tensorflows(side):
    """Inside, across the border (zeros outside) and a degenerate box."""
    import tensorflow as tf

    from verifier.mtcnn_pipeline import crop_and_resize

    image = np.random.default_rng(side).uniform(-1, 1, (200, 180, 3)).astype(np.float32)
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [-0.1, -0.05, 0.3, 0.4], [0.7, 0.8, 1.2, 1.1],
                      [0.3, 0.3, 0.3, 0.3]], np.float32)
    want = tf.raw_ops.CropAndResize(image=image[None], boxes=boxes, box_ind=np.zeros(4, np.int32),
                                    crop_size=[side, side]).numpy()
    np.testing.assert_allclose(crop_and_resize(image, boxes, side), want, atol=1e-6)


def test_mtcnn_translations_are_cached_and_a_damaged_file_is_made_again(tmp_path, monkeypatch):
    from verifier.mtcnn_pipeline import MTCNNPipeline

    folder = tmp_path / "mtcnn"
    first = MTCNNPipeline.cached(folder=folder)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(files) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]
    image = _cartoon_face(160, 160, 1)
    # from the files alone: translating again would fail here
    monkeypatch.setattr(MTCNNPipeline, "translate", lambda package: 1 / 0)
    assert MTCNNPipeline.cached(folder=folder).detect(image) == first.detect(image)
    monkeypatch.undo()
    (folder / "rnet.onnx").write_bytes(b"not a model")
    again = MTCNNPipeline.cached(folder=folder)
    assert again.detect(image) == first.detect(image)
    assert (folder / "rnet.onnx").read_bytes() != b"not a model"  # translated and written again
    assert not list(folder.glob(".*"))  # no temporary file left
