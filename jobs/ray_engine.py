"""The Ray engine of ``verifier embed``: the same preprocessing and model as the local
engine, run by Ray Data actors (the model loaded once per worker) over the photos the
content-addressed diff left to embed. Batches stream back to the driver, which
commits them exactly as locally, so a killed run is completed by the next one.

Workers read photos by path and load the model from the workspace: local Ray, or a
cluster whose nodes see the same paths (a shared filesystem)."""
from __future__ import annotations

import logging
import os
from typing import Iterator

import numpy as np

from storage.workspace import Workspace
from verifier.errors import VerifierError

from .embed import EmbedError, prepare_row

log = logging.getLogger(__name__)

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


class Embedder:
    """A Ray Data actor: loads the model version once, then embeds batches of
    ``{image_id, path}`` into ``{image_id, path, reason, face, vector}``."""

    def __init__(self, home: str, model: str) -> None:
        from .models import load_model

        self.loaded = load_model(Workspace.open(home), model)

    def __call__(self, batch: dict) -> dict:
        done = [prepare_row(self.loaded, int(i), str(p)) for i, p in zip(batch["image_id"], batch["path"])]
        pixels = [p for _, p in done if p is not None]
        vectors = np.zeros((len(done), self.loaded.dimension), np.float32)
        if pixels:
            ok = [k for k, (_, p) in enumerate(done) if p is not None]
            vectors[ok] = self.loaded.embed(np.stack(pixels))
        rows = [row for row, _ in done]
        return {"image_id": np.array([r[0] for r in rows], np.int64),
                "path": np.array([r[1] for r in rows], dtype=object),
                "reason": np.array([r[2] or "" for r in rows], dtype=object),
                "face": np.array([r[3] or "" for r in rows], dtype=object),
                "vector": vectors}


def ray_batches(ws: Workspace, model: str, todo: list, batch_size: int, *,
                address: str | None = None, workers: int | None = None
                ) -> Iterator[tuple[list, np.ndarray]]:
    """``(rows, vectors of the usable rows)`` per batch, computed on Ray."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise EmbedError("--engine ray needs Ray: pip install 'siamese-verifier[ray]'") from None
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else \
            {"num_cpus": workers or os.cpu_count() or 1, "include_dashboard": False}
        ray.init(**kwargs, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": QUIET_ENV})
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        items = [{"image_id": int(i), "path": str(p)} for i, p in todo]
        # at least one block per worker, so that a small run still uses every worker
        blocks = min(len(items), max(size, -(-len(items) // batch_size)))
        dataset = ray.data.from_items(items, override_num_blocks=blocks)
        embedded = dataset.map_batches(Embedder, fn_constructor_args=(str(ws.root), model),
                                       batch_size=batch_size, concurrency=min(size, blocks),
                                       num_cpus=1, batch_format="numpy")
        try:
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                rows = [(int(i), str(p), r or None, f or None) for i, p, r, f in
                        zip(batch["image_id"], batch["path"], batch["reason"], batch["face"])]
                ok = np.array([r[2] is None for r in rows], dtype=bool)
                yield rows, np.asarray(batch["vector"], np.float32)[ok]
        except Exception as exc:  # a worker's named error comes back wrapped by Ray
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VerifierError):
                raise cause from None
            raise
    finally:
        if started:
            ray.shutdown()
