"""Loading a saved model version and turning photos into embeddings with it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.workspace import Workspace
from .preprocess import PhotoPreparer


@dataclass
class LoadedModel:
    """A model version ready to embed photos with its own preprocessing."""

    name: str
    path: Path
    config: dict
    branch: Any
    preparer: PhotoPreparer
    calls: int = 0  # number of model invocations, for tests and benchmarks
    _run: Any = None

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
        """Embeddings of a batch of branch inputs, ``(N, dimension)`` float32."""
        self.calls += 1
        if self._run is None:
            from verifier.network import inference_function

            self._run = inference_function(self.branch)
        return np.asarray(self._run(np.asarray(pixels, dtype=np.float32)), dtype=np.float32)


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
    return LoadedModel(resolved, folder, config, branch,
                       PhotoPreparer.for_config(config, ws.cache_dir / "faces"))
