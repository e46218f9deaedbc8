"""The Ray engine of ``verifier embed``: the same preprocessing and model as the local
engine, run by Ray Data actors (the model loaded once per worker) over the photos the
content-addressed diff left to embed. Batches stream back to the driver, which
commits them exactly as locally, so a killed run is completed by the next one.

Workers read photos by path and load the model from the workspace: local Ray, or a
cluster whose nodes see the same paths (a shared filesystem)."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import numpy as np

from storage.workspace import Workspace
from verifier.errors import VerifierError

from .embed import EmbedError, Row, prepare_batch
from .quiet import without_native_log_lines

log = logging.getLogger(__name__)


class Embedder:
    """A Ray Data actor: loads the model version once, then embeds batches of
    ``{image_id, path}`` into ``{image_id, path, reason, face, vector}``, preparing
    the photos of a batch on as many threads as it was given CPUs."""

    def __init__(self, home: str, model: str, threads: int, min_quality: float = 0.0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .models import load_model

        self.loaded = load_model(Workspace.open(home), model, threads=threads)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self.min_quality = min_quality

    def __call__(self, batch: dict) -> dict:
        rows, pixels = prepare_batch(self.loaded, [(int(i), str(p)) for i, p in
                                                   zip(batch["image_id"], batch["path"])], self.pool,
                                     self.min_quality)
        vectors = np.zeros((len(rows), self.loaded.dimension), np.float32)
        if pixels is not None:
            vectors[[r.reason is None for r in rows]] = self.loaded.embed(pixels)
        return {"image_id": np.array([r.image_id for r in rows], np.int64),
                "path": np.array([r.path for r in rows], dtype=object),
                "reason": np.array([r.reason or "" for r in rows], dtype=object),
                "face": np.array([r.face or "" for r in rows], dtype=object),
                "quality": np.array([np.nan if r.quality is None else r.quality for r in rows], np.float64),
                "vector": vectors}


def _actor_pool(size: int):
    """``size`` actors, each running two batches at once so that one batch's photos
    are prepared while the model runs on the other's (as the local engine overlaps
    them); older Ray releases without these options run one batch at a time."""
    import ray.data

    try:
        return ray.data.ActorPoolStrategy(size=size, max_concurrent_calls_per_actor=2,
                                          enable_true_multi_threading=True)
    except TypeError:
        return ray.data.ActorPoolStrategy(size=size)


def ray_batches(ws: Workspace, model: str, todo: list, batch_size: int, *,
                address: str | None = None, workers: int | None = None, min_quality: float = 0.0
                ) -> Iterator[tuple[list, np.ndarray]]:
    """``(rows, vectors of the usable rows)`` per batch, computed on Ray.

    Ray's notes (Ray Data's warnings, the scheduling notes Ray's driver writes to
    standard error) show only when the application logs at INFO (``-v``) or below."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EmbedError("--engine ray needs Ray: pip install 'siamese-verifier[ray]'") from None
    from .models import ensure_onnx

    ensure_onnx(ws, model)  # exported once here, not by every worker at once
    verbose = logging.getLogger().getEffectiveLevel() < logging.WARNING
    with contextlib.nullcontext() if verbose else without_native_log_lines():
        yield from _run(ws, model, todo, batch_size, address, workers,
                        logging.WARNING if verbose else logging.ERROR, min_quality)


def _run(ws: Workspace, model: str, todo: list, batch_size: int, address: str | None,
         workers: int | None, notes: int, min_quality: float) -> Iterator[tuple[list, np.ndarray]]:
    import ray
    import ray.data

    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else \
            {"num_cpus": os.cpu_count() or 1, "include_dashboard": False}
        # no runtime_env: the workers load no TensorFlow to quieten, and a runtime
        # environment costs worker start-up time
        ray.init(**kwargs, log_to_driver=False, logging_level=notes)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.verbose_stats_logs = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(notes)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = workers or cpus
        # each worker reserves, and uses, its share of the CPUs: whole CPUs, or a fraction
        # of one where workers outnumber them (Ray takes fractions only below one)
        share = cpus // size if size <= cpus else cpus / size
        items = [{"image_id": int(i), "path": str(p)} for i, p in todo]
        # at least one block per worker, so that a small run still uses every worker
        blocks = min(len(items), max(size, -(-len(items) // batch_size)))
        dataset = ray.data.from_items(items, override_num_blocks=blocks)
        threads = int(max(1, share))
        embedded = dataset.map_batches(Embedder, fn_constructor_args=(str(ws.root), model, threads,
                                                                      min_quality),
                                       batch_size=batch_size, compute=_actor_pool(min(size, blocks)),
                                       num_cpus=share, batch_format="numpy")
        try:
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                rows = [Row(int(i), str(p), r or None, f or None, None if np.isnan(q) else float(q))
                        for i, p, r, f, q in zip(batch["image_id"], batch["path"], batch["reason"],
                                                 batch["face"], batch["quality"])]
                ok = np.array([r.reason is None for r in rows], dtype=bool)
                yield rows, np.asarray(batch["vector"], np.float32)[ok]
        except Exception as exc:  # a worker's named error comes back wrapped by Ray
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VerifierError):
                raise cause from None
            raise
    finally:
        if started:
            ray.shutdown()
