import numpy as np
import pytest

from verifier.errors import BackboneError
from verifier.network import build_branch, build_siamese, trainable_layer_count


def test_trainable_layer_count_matches_tutorial():
    assert trainable_layer_count(22, 0.10) == 3  # VGG19 without top: block5_conv3..pool
    assert trainable_layer_count(22, 0.0) == 0
    assert trainable_layer_count(22, 1.0) == 22
    with pytest.raises(BackboneError):
        trainable_layer_count(22, 1.5)


@pytest.mark.parametrize("backbone,size,fine_tune", [("tiny", 32, 0.0), ("tiny", 32, 0.5),
                                                     ("vgg19", 32, 0.1), ("resnet50", 32, 0.1)])
def test_frozen_then_head_equals_branch(backbone, size, fine_tune):
    b = build_branch(backbone, weights="none", image_size=size, embedding_dim=8, fine_tune=fine_tune)
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    whole = np.asarray(b.model(x))
    split = np.asarray(b.head(b.frozen(x)))
    assert whole.shape == (3, 8)
    np.testing.assert_allclose(whole, split, rtol=1e-5, atol=1e-5)
    # the frozen part has no trainable weight; the head has all of them
    assert not b.frozen.trainable_weights
    assert len(b.head.trainable_weights) == len(b.model.trainable_weights)


def test_vgg19_default_split():
    b = build_branch("vgg19", weights="none", image_size=32)
    assert (b.backbone_layers, b.trainable_layers, b.cut_layer) == (22, 3, "block5_conv3")


def test_siamese_outputs_distance():
    b = build_branch("tiny", weights="none", image_size=32, embedding_dim=4)
    s = build_siamese(b.model)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    d = np.asarray(s([x, x[::-1]]))
    e = np.asarray(b.model(x))
    np.testing.assert_allclose(d, np.linalg.norm(e - e[::-1], axis=1), rtol=1e-5)


def test_unknown_backbone_and_missing_weights(tmp_path):
    with pytest.raises(BackboneError, match="unknown backbone"):
        build_branch("alexnet", weights="none")
    with pytest.raises(BackboneError, match="does not exist"):
        build_branch("tiny", weights=str(tmp_path / "missing.h5"), image_size=32)


def test_local_weights_file_round_trip(tmp_path):
    from verifier.backbones import build_backbone

    a = build_backbone("tiny", weights="none", image_size=32)
    path = tmp_path / "tiny.weights.h5"
    a.save_weights(path)
    b = build_backbone("tiny", weights=str(path), image_size=32)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_preprocessing_modes():
    from verifier.layers import Preprocess

    x = np.array([[[[255.0, 0.0, 127.5]]]], dtype="float32")
    assert np.asarray(Preprocess("unit")(x)).ravel() == pytest.approx([1.0, 0.0, 0.5])
    assert np.asarray(Preprocess("tf")(x)).ravel() == pytest.approx([1.0, -1.0, 0.0])
    # caffe: BGR order minus the ImageNet BGR mean
    assert np.asarray(Preprocess("caffe")(x)).ravel() == pytest.approx(
        [127.5 - 103.939, 0.0 - 116.779, 255.0 - 123.68], rel=1e-5)
