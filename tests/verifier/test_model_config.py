"""A model's config parsed once: the fields a trained model records, the values a
config of an earlier release behaved as, and a clear error for a broken one."""
from __future__ import annotations

import json

import pytest

from verifier.defaults import DEFAULT_PADDING
from verifier.model_config import ConfigError, ModelConfig


def test_a_trained_models_config_is_read_into_typed_fields(tmp_path):
    document = {"name": "m", "image_size": "150", "backbone": "dlib-resnet", "detector": "mtcnn",
                "face_padding": 0.3, "tta": "flip", "embedding_dim": 128, "head": "none",
                "fine_tune": 0, "threshold": 0.49, "threshold_rule": "far<=1e-4", "seed": 7,
                "protocol": "open-set", "data_root": "/d", "selection": {"kept": "start"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    config = ModelConfig.read(path)
    assert (config.name, config.image_size, config.detector, config.face_padding, config.tta) == \
        ("m", 150, "mtcnn", 0.3, "flip")
    assert (config.embedding_dim, config.head, config.fine_tune, config.seed) == (128, "none", 0.0, 7)
    assert config.as_dict() == document  # the whole document kept, for the database
    flipped = config.with_tta("none")
    assert flipped.tta == "none" and flipped.as_dict()["tta"] == "none" and config.tta == "flip"


def test_an_earlier_releases_config_gets_what_that_release_did():
    config = ModelConfig.parse({"image_size": 32}, name="old")
    assert config.name == "old" and config.detector == "none" and config.tta == "none"
    assert config.head == "dense" and config.embedding_dim is None and config.face_padding == DEFAULT_PADDING
    assert ModelConfig.parse({"image_size": 32, "detector": None}).detector == "none"


@pytest.mark.parametrize("document", [{}, {"image_size": "big"}])
def test_a_broken_config_is_a_clear_error(document, tmp_path):
    with pytest.raises(ConfigError, match="not usable"):
        ModelConfig.parse(document, name="m")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not a model config"):
        ModelConfig.read(tmp_path / "config.json")
