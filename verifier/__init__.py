"""The model and the maths: photos, the face pipeline (detection, choice, alignment,
quality, preparation into branch inputs), backbones, the Siamese network, losses,
pairs and metrics. No database, no HTTP.

Names are imported on first use (PEP 562), so ``import verifier`` does not load
TensorFlow; ``from verifier import build_branch`` does.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VerifierError": "errors", "ImageError": "errors", "NoFaceFound": "errors",
    "DetectorUnavailable": "errors", "BackboneError": "errors", "SeveralFaces": "errors",
    "NoSuchFace": "errors",
    "decode_image": "images", "scan_dataset": "images",
    "Face": "faces", "FaceDetector": "faces", "MTCNNDetector": "faces", "YuNetDetector": "faces", "align": "faces",
    "Detection": "detection", "DetectedFace": "detection", "detect_faces": "detection",
    "PhotoPreparer": "preparation", "Prepared": "preparation", "FaceStore": "preparation",
    "build_branch": "network", "build_siamese": "network", "inference_function": "network",
    "contrastive_loss_np": "losses", "euclidean_distance_np": "losses",
    "make_pairs": "pairs", "PairSet": "pairs",
    "summary": "metrics", "best_accuracy_threshold": "metrics", "far_threshold": "metrics",
    "kfold_accuracy": "metrics",
    "Branch": "onnx_branch", "export_branch": "onnx_branch",
    "cluster_vectors": "clustering", "bcubed": "clustering", "ClusteringError": "clustering",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
