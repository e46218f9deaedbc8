"""Loading a saved model version and turning photos into embeddings with it."""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from storage.workspace import Workspace
from .preprocess import PhotoPreparer

log = logging.getLogger(__name__)


class LoadedModel:
    """A model version ready to embed photos with its own preprocessing.

    Safe to share between threads: the compiled inference function is built once
    (the first call traces it under a lock), and the call counter is locked."""

    def __init__(self, name: str, path: Path, config: dict, branch: Any,
                 preparer: PhotoPreparer) -> None:
        from verifier.network import inference_function

        self.name = name
        self.path = path
        self.config = config
        self.branch = branch
        self.preparer = preparer
        self.calls = 0  # model invocations, for tests and benchmarks
        self._run = inference_function(branch)
        self._lock = threading.Lock()
        self._traced = False

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def dimension(self) -> int:
        return int(self.branch.output.shape[-1])

    def load(self, path: Path) -> np.ndarray:
        """The branch input for one photo file (face detected and aligned when the
        model was trained so)."""
        return self.preparer.prepare(path).pixels

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of branch inputs, ``(N, dimension)`` float32. A model
        trained with ``--tta flip`` averages each input's and its mirror's, computed
        in the same batch."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if self.config.get("tta") == "flip":
            both = self._forward(np.concatenate([pixels, pixels[:, :, ::-1]]))
            return (both[: len(pixels)] + both[len(pixels):]) / 2
        return self._forward(pixels)

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            if not self._traced:  # trace once, not once per racing thread
                out = self._run(pixels)
                self._traced = True
                return np.asarray(out, dtype=np.float32)
        return np.asarray(self._run(pixels), dtype=np.float32)


def read_config(ws: Workspace, name: str) -> dict:
    """The config saved with model version ``name``."""
    return json.loads((ws.model_dir(name) / "config.json").read_text("utf-8"))


def load_model(ws: Workspace, name: str | None = None) -> LoadedModel:
    """Load model version ``name`` (default: the most recent one)."""
    import keras

    import verifier.layers  # noqa: F401  (registers the preprocessing layer)

    resolved = ws.resolve_model(name)
    folder = ws.model_dir(resolved)
    config = read_config(ws, resolved)
    branch = keras.models.load_model(folder / "branch.keras", compile=False)
    if config.get("backbone") == "dlib-resnet":
        branch = _without_padded_convolutions(branch, config, ws.cache_dir)
    return LoadedModel(resolved, folder, config, branch,
                       PhotoPreparer.for_config(config, ws.faces_cache_dir))


def _without_padded_convolutions(branch: Any, config: dict, cache_dir: Path) -> Any:
    """A dlib-resnet branch saved before 0.2 rebuilt without ``Pad -> Conv2D`` (which
    crashes TensorFlow's oneDNN pass, see ``verifier.dlib_resnet``), same weights."""
    from verifier.dlib_resnet import has_padded_convolutions
    from verifier.network import build_branch

    if not has_padded_convolutions(branch):
        return branch
    log.info("rebuilding dlib-resnet branch %s without explicit padding layers", config.get("name"))
    weights = config.get("weights") or "dlib"
    if weights not in ("dlib", "default") and not Path(weights).is_file():
        weights = "dlib"  # only the architecture is taken from the file
    rebuilt = build_branch("dlib-resnet", weights=weights, image_size=int(config["image_size"]),
                           embedding_dim=int(config.get("embedding_dim") or 128),
                           fine_tune=float(config.get("fine_tune", 0.0)),
                           head=config.get("head", "dense"), cache_dir=cache_dir).model
    rebuilt.set_weights(branch.get_weights())
    return rebuilt
