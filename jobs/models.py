"""Loading a saved model version and turning photos into embeddings with it."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from storage.workspace import Workspace
from verifier.defaults import DEFAULT_INFERENCE_ENGINE, INFERENCE_ENGINES
from verifier.errors import VerifierError
from verifier.faces import cache_name
from verifier.model_config import ModelConfig
from verifier.onnx_branch import BRANCH_FILE, Branch
from verifier.preparation import PhotoPreparer

log = logging.getLogger(__name__)


class ModelError(VerifierError):
    """A model version cannot be run as asked (an unknown inference engine)."""


class LoadedModel:
    """A model version ready to embed photos with its own preprocessing.

    ``forward`` maps ``(N, side, side, 3)`` float32 branch inputs to ``(N, dimension)``
    embeddings: an ONNX Runtime session on the exported branch (the default), or
    the Keras branch. Safe to share between threads; the call counter is locked."""

    def __init__(self, name: str, path: Path, config: ModelConfig, forward: Callable[[np.ndarray], np.ndarray],
                 dimension: int, preparer: PhotoPreparer, engine: str = DEFAULT_INFERENCE_ENGINE) -> None:
        self.name = name
        self.path = path
        self.config = config
        self.forward = forward
        self.dimension = dimension
        self.preparer = preparer
        self.engine = engine
        self.calls = 0  # model invocations, for tests and benchmarks
        self._lock = threading.Lock()

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def load(self, path: Path) -> np.ndarray:
        """The branch input for one photo file (face detected and aligned when the
        model was trained so)."""
        return self.preparer.prepare(path).pixels

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of branch inputs, ``(N, dimension)`` float32. A model
        trained with ``--tta flip`` averages each input's and its mirror's, computed
        in the same batch."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if self.config.tta == "flip":
            both = self._forward(np.concatenate([pixels, pixels[:, :, ::-1]]))
            return (both[: len(pixels)] + both[len(pixels):]) / 2
        return self._forward(pixels)

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
        return np.asarray(self.forward(pixels), dtype=np.float32)


class KerasForward:
    """The Keras branch as one compiled inference function; the first call traces it
    under a lock (not once per racing thread)."""

    def __init__(self, branch: Any) -> None:
        from verifier.network import inference_function

        self.branch = branch
        self._run = inference_function(branch)
        self._lock = threading.Lock()
        self._traced = False

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if not self._traced:
            with self._lock:
                if not self._traced:
                    out = self._run(pixels)
                    self._traced = True
                    return out
        return self._run(pixels)


def read_config(ws: Workspace, name: str) -> ModelConfig:
    """The config saved with model version ``name``."""
    return ModelConfig.read(ws.model_dir(name) / "config.json", name)


def inference_engine(engine: str | None = None) -> str:
    """The engine asked for: ``engine``, else ``$VERIFIER_ENGINE``, else the default."""
    engine = engine or os.environ.get("VERIFIER_ENGINE") or DEFAULT_INFERENCE_ENGINE
    if engine not in INFERENCE_ENGINES:
        raise ModelError(f"unknown inference engine {engine!r}; choose one of "
                         f"{', '.join(INFERENCE_ENGINES)} (VERIFIER_ENGINE)")
    return engine


def load_model(ws: Workspace, name: str | None = None, *, engine: str | None = None,
               threads: int | None = None) -> LoadedModel:
    """Load model version ``name`` (default: the most recent one). With the ONNX
    engine (default) TensorFlow is not loaded, except once to export a version saved
    before exports existed (:func:`export_onnx`). ``threads``: ONNX Runtime's
    intra-op threads (default: every core)."""
    engine = inference_engine(engine)
    resolved = ws.resolve_model(name)
    folder = ws.model_dir(resolved)
    config = read_config(ws, resolved)
    preparer = PhotoPreparer.for_config(config, ws.face_cache(cache_name(config.detector)))
    if engine == "keras":
        branch = _keras_branch(ws, resolved)
        return LoadedModel(resolved, folder, config, KerasForward(branch),
                           int(branch.output.shape[-1]), preparer, engine)
    branch = Branch(ensure_onnx(ws, resolved), threads or os.cpu_count() or 1)
    return LoadedModel(resolved, folder, config, branch, branch.dimension, preparer, engine)


def ensure_onnx(ws: Workspace, name: str) -> Path:
    """The path of a model version's ``branch.onnx``, exported first if missing:
    beside ``branch.keras``, or in ``HOME/cache/onnx/`` when the model's folder cannot
    be written (a read-only volume shared by servers)."""
    for path in _onnx_places(ws, name):
        if path.is_file():
            return path
    return export_onnx(ws, name)


def _onnx_places(ws: Workspace, name: str) -> list[Path]:
    return [ws.model_dir(name) / BRANCH_FILE, ws.cache_dir / "onnx" / f"{name}.onnx"]


def export_onnx(ws: Workspace, name: str) -> Path:
    """Write ``branch.onnx`` beside a model version's ``branch.keras`` (checked
    against Keras, atomic): done by ``train`` for new versions, and on first use for
    versions saved before. Loads TensorFlow."""
    from verifier.onnx_branch import export_branch

    from .quiet import start_tensorflow

    start_tensorflow()
    log.info("exporting model version %s to ONNX (once)", name)
    beside, cached = _onnx_places(ws, name)
    target = beside if os.access(beside.parent, os.W_OK) else cached
    target.parent.mkdir(parents=True, exist_ok=True)
    return export_branch(_keras_branch(ws, name), target)


def _keras_branch(ws: Workspace, name: str) -> Any:
    import keras

    import verifier.layers  # noqa: F401  (registers the preprocessing layer)

    config = read_config(ws, name)
    branch = keras.models.load_model(ws.model_dir(name) / "branch.keras", compile=False)
    if config.backbone == "dlib-resnet":
        branch = _without_padded_convolutions(branch, config, ws.cache_dir)
    return branch


def _without_padded_convolutions(branch: Any, config: ModelConfig, cache_dir: Path) -> Any:
    """A dlib-resnet branch saved before 0.2 rebuilt without ``Pad -> Conv2D`` (which
    crashes TensorFlow's oneDNN pass, see ``verifier.dlib_resnet``), same weights."""
    from verifier.dlib_resnet import has_padded_convolutions
    from verifier.network import build_branch

    if not has_padded_convolutions(branch):
        return branch
    log.info("rebuilding dlib-resnet branch %s without explicit padding layers", config.name)
    weights = config.weights or "dlib"
    if weights not in ("dlib", "default") and not Path(weights).is_file():
        weights = "dlib"  # only the architecture is taken from the file
    rebuilt = build_branch("dlib-resnet", weights=weights, image_size=config.image_size,
                           embedding_dim=config.embedding_dim or int(branch.output.shape[-1]),
                           fine_tune=config.fine_tune, head=config.head, cache_dir=cache_dir).model
    rebuilt.set_weights(branch.get_weights())
    return rebuilt
