"""The Ray engine of ``verifier embed``: the same preprocessing and model as the local
engine, run by Ray actors (the model loaded once per worker) over the photos the
content-addressed diff left to embed. Batches stream back to the driver, which
commits them exactly as locally, so a killed run is completed by the next one.

Plain actors rather than Ray Data: the work is a list of paths split into batches,
which needs none of Ray Data's planning; its streaming executor added about 10 s to a
1,024-photo run here (``benchmarks/embed_engines.py``). Each actor runs two
batches at once, so that one batch's photos are prepared while the model runs on the
other's (as the local engine overlaps them); the driver keeps every actor that busy
and no busier, so results never pile up. A worker that dies is restarted and its
batches retried by Ray.

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

from ..quiet import without_native_log_lines
from . import EmbedError
from .rows import Row, prepare_batch

log = logging.getLogger(__name__)

CALLS_PER_WORKER = 2
"""Batches each actor works on at once (one prepared while the other is embedded)."""

RETRIES = 3
"""Restarts of a worker that dies, and retries of the batch it held."""


class Embedder:
    """A worker: loads the model version once, then embeds batches of ``(image_id,
    path)`` into ``(rows, vectors of the usable rows)``, preparing the photos of a
    batch on as many threads as it was given CPUs. Thread-safe (an actor runs
    :data:`CALLS_PER_WORKER` calls at once)."""

    def __init__(self, home: str, model: str, threads: int, min_quality: float = 0.0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from ..models import load_model

        self.loaded = load_model(Workspace.open(home), model, threads=threads)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self.min_quality = min_quality

    def embed(self, batch: list[tuple[int, str]]) -> tuple[list[Row], np.ndarray]:
        rows, pixels = prepare_batch(self.loaded, batch, self.pool, self.min_quality)
        vectors = (self.loaded.embed(pixels) if pixels is not None
                   else np.zeros((0, self.loaded.dimension), np.float32))
        return rows, vectors


def ray_batches(ws: Workspace, model: str, todo: list, batch_size: int, *,
                address: str | None = None, workers: int | None = None, min_quality: float = 0.0
                ) -> Iterator[tuple[list, np.ndarray]]:
    """``(rows, vectors of the usable rows)`` per batch, computed on Ray, in the order
    the batches finish.

    Ray's notes (the scheduling notes Ray's driver writes to standard error) show only
    when the application logs at INFO (``-v``) or below."""
    try:
        import ray
    except ImportError:
        raise EmbedError("--engine ray needs Ray: pip install 'siamese-verifier[ray]'") from None
    from ..models import ensure_onnx

    ensure_onnx(ws, model)  # exported once here, not by every worker at once
    verbose = logging.getLogger().getEffectiveLevel() < logging.WARNING
    with contextlib.nullcontext() if verbose else without_native_log_lines():
        yield from _run(ray, ws, model, todo, batch_size, address, workers,
                        logging.WARNING if verbose else logging.ERROR, min_quality)


def _run(ray, ws: Workspace, model: str, todo: list, batch_size: int, address: str | None,
         workers: int | None, notes: int, min_quality: float) -> Iterator[tuple[list, np.ndarray]]:
    started = not ray.is_initialized()
    if started and address:
        _check_reachable(address)
    if started:
        kwargs = {"address": address} if address else \
            {"num_cpus": os.cpu_count() or 1, "include_dashboard": False}
        # no runtime_env: the workers load no TensorFlow to quieten, and a runtime
        # environment costs worker start-up time
        try:
            ray.init(**kwargs, log_to_driver=False, logging_level=notes)
        except ConnectionError as exc:  # no cluster at that address
            raise EmbedError(f"cannot join the Ray cluster at {address!r}: {exc} (start one with "
                             "`ray start --head`, or leave out --ray-address to run a local "
                             "Ray for this run)") from None
    logging.getLogger("ray").setLevel(notes)
    try:
        batches = [[(int(i), str(p)) for i, p in todo[k:k + batch_size]]
                   for k in range(0, len(todo), batch_size)]
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = min(workers or cpus, len(batches))
        # each worker reserves, and uses, its share of the CPUs: whole CPUs, or a fraction
        # of one where workers outnumber them (Ray takes fractions only below one)
        share = cpus // size if size <= cpus else cpus / size
        worker = ray.remote(Embedder).options(**worker_options(share))
        actors = [worker.remote(str(ws.root), model, int(max(1, share)), min_quality)
                  for _ in range(size)]
        yield from dispatch(ray, actors, batches)
    finally:
        if started:
            ray.shutdown()


CONNECT_TIMEOUT_S = 5.0
"""How long a cluster address may take to accept a connection before the run stops
(Ray itself keeps retrying for minutes)."""


def _check_reachable(address: str) -> None:
    """An :class:`EmbedError` when nothing listens at a ``host:port`` or
    ``ray://host:port`` address (``auto`` is left to Ray, which answers at once)."""
    import socket
    from urllib.parse import urlsplit

    if address == "auto":
        return
    target = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = target.hostname, target.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise EmbedError(f"--ray-address {address!r} is not auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise EmbedError(f"cannot join the Ray cluster at {address!r}: nothing answers at "
                         f"{host}:{port} ({exc.strerror or exc})") from None


def worker_options(share: float) -> dict:
    """Ray's options for a worker reserving ``share`` CPUs: :data:`CALLS_PER_WORKER`
    calls at once, restarted and its calls retried :data:`RETRIES` times if it dies."""
    return {"num_cpus": share, "max_concurrency": CALLS_PER_WORKER, "max_restarts": RETRIES,
            "max_task_retries": RETRIES}


def dispatch(ray, actors: list, batches: list) -> Iterator[tuple[list, np.ndarray]]:
    """Each batch's result as it finishes, with :data:`CALLS_PER_WORKER` batches in
    flight per actor: a finished batch's actor gets the next one."""
    waiting = iter(batches)
    running: dict = {}
    for actor in actors:
        for batch in _take(waiting, CALLS_PER_WORKER):
            running[actor.embed.remote(batch)] = actor
    while running:
        (done,), _ = ray.wait(list(running), num_returns=1)
        actor = running.pop(done)
        for batch in _take(waiting, 1):
            running[actor.embed.remote(batch)] = actor
        try:
            yield ray.get(done)
        except Exception as exc:  # a worker's named error comes back wrapped by Ray
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VerifierError):
                raise cause from None
            raise


def _take(items, n: int) -> list:
    return [item for _, item in zip(range(n), items)]
