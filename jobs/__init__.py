"""The use cases that need both the model and storage (train, embed, evaluate,
report, the loaded :class:`Verifier`) and the front ends over them (the CLI).

Names are imported on first use (PEP 562), so the CLI starts without TensorFlow.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Verifier": "live",
    "QueryResult": "answers", "Match": "answers", "Verification": "answers", "Enrolled": "answers",
    "Removed": "answers", "FaceAnswer": "answers", "LARGEST": "answers",
    "QueryError": "errors", "PhotoNotFound": "errors", "IdentityNotFound": "errors",
    "EnrollConflict": "errors", "GalleryEmpty": "errors", "NotCalibrated": "errors",
    "rank_identities": "ranking",
    "detect_many": "detect",
    "load_model": "models", "LoadedModel": "models",
    "embed_gallery": "embed", "EmbedSummary": "embed",
    "TrainOptions": "train", "TrainResult": "train",
    "Evaluation": "evaluate",
    "write_report": "report", "run_pipeline": "pipeline",
    "cluster_photos": "cluster", "name_group": "cluster", "load_run": "cluster",
    "ClusterRun": "cluster", "PhotoItem": "cluster", "photo_items": "cluster",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
