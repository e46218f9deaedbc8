"""The Keras port of dlib's ResNet reproduces dlib's own descriptors."""
import json

import numpy as np
import pytest

from tests.conftest import DLIB_REFERENCE


@pytest.fixture(scope="module")
def dlib_model(tmp_path_factory):
    pytest.importorskip("face_recognition_models")
    from verifier.dlib_resnet import build_dlib_resnet

    return build_dlib_resnet(cache_dir=tmp_path_factory.mktemp("cache"))


def test_reproduces_every_reference_descriptor(dlib_model):
    if not (DLIB_REFERENCE / "descriptors.json").is_file():
        pytest.skip(f"{DLIB_REFERENCE} is absent")
    from PIL import Image

    from verifier.layers import Preprocess

    reference = json.loads((DLIB_REFERENCE / "descriptors.json").read_text())
    names = sorted(n for n, v in reference.items() if v.get("descriptor"))
    assert len(names) == 128
    chips = np.stack([np.asarray(Image.open(DLIB_REFERENCE / "chips" / n).convert("RGB"))
                      for n in names]).astype(np.float32)
    out = np.concatenate([np.asarray(dlib_model(Preprocess("dlib")(chips[i:i + 32])))
                          for i in range(0, len(chips), 32)])
    expected = np.array([reference[n]["descriptor"] for n in names])
    assert out.shape == (128, 128)
    assert np.abs(out - expected).max() < 1e-4


def test_conversion_is_cached(tmp_path):
    pytest.importorskip("face_recognition_models")
    from verifier.dlib_resnet import build_dlib_resnet

    first = build_dlib_resnet(cache_dir=tmp_path)
    cached = list(tmp_path.glob("dlib_resnet_*.weights.h5"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = build_dlib_resnet(cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == mtime  # loaded, not rewritten
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_missing_extra_is_a_clear_error(monkeypatch):
    import builtins

    from verifier.dlib_resnet import packaged_weights
    from verifier.errors import BackboneError

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "face_recognition_models":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(BackboneError, match=r"siamese-verifier\[dlib\]"):
        packaged_weights()
