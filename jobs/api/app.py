"""The ASGI app: ``create_app`` is the factory tests and ``verifier serve`` use."""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from storage.workspace import Workspace

from ..live import Verifier
from ..models import inference_engine
from . import errors
from .background import ClusterRunner
from .deps import Admission, Service
from .guard import Guard
from .routes import clusters, gallery, health, page, reports, search
from .settings import MAX_CLUSTER_RUNS_WAITING, Settings

log = logging.getLogger(__name__)

API_VERSION = "1"


class Maintenance(threading.Thread):
    """Picks up other processes' changes every ``refresh_interval`` seconds and
    writes an index snapshot every ``snapshot_interval`` seconds when it changed."""

    def __init__(self, verifier: Verifier, settings: Settings) -> None:
        super().__init__(name="verifier-maintenance", daemon=True)
        self.verifier = verifier
        self.settings = settings
        self.stop = threading.Event()
        self.snapshots = 0

    def run(self) -> None:
        last_save = time.monotonic()
        while not self.stop.wait(self.settings.refresh_interval):
            try:
                caught = self.verifier.refresh()
                if caught.changed:
                    log.info("caught up with the database: %d added, %d removed, %d updated "
                             "(change %d)", caught.added, caught.removed, caught.updated,
                             self.verifier.seq)
                if time.monotonic() - last_save >= self.settings.snapshot_interval:
                    last_save = time.monotonic()
                    self.snapshots += self.verifier.save()
            except Exception:  # noqa: BLE001 - keep serving; the next round retries
                log.exception("index maintenance failed")


def share_cores(threads: int) -> None:
    """With the Keras engine: give each inference worker its share of the cores
    (TensorFlow's intra-op threads), before TensorFlow starts: a request's small
    tensors gain nothing from a second thread, and concurrent requests then run side
    by side (measured by ``benchmarks/serve_load.py``). No effect once TensorFlow runs. The ONNX engine gets the same budget as
    its sessions' intra-op threads."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (an app created in a process that used TF)
        pass


def _gauges(svc: Service, maintenance: Maintenance) -> None:
    """The service's gauges, read from the verifier and admission at each scrape."""
    svc.metrics.gauge("verifier_gallery_vectors", "Vectors searchable in the live index.",
                      lambda: svc.verifier.gallery_size)
    svc.metrics.gauge("verifier_changes_behind",
                      "Gallery changes in the database not applied to this server's index yet.",
                      lambda: svc.verifier.lag().changes)
    svc.metrics.gauge("verifier_catch_up_lag_seconds",
                      "Age of the oldest gallery change this server has not applied (0 when none).",
                      lambda: svc.verifier.lag().seconds)
    svc.metrics.gauge("verifier_change_seq", "The last gallery change applied to this server's index.",
                      lambda: svc.verifier.seq)
    svc.metrics.gauge("verifier_queue_waiting", "Inference requests waiting for a worker.",
                      lambda: svc.admission.waiting)
    svc.metrics.gauge("verifier_inference_in_flight", "Inference requests admitted.",
                      lambda: svc.admission.in_flight)
    svc.metrics.gauge("verifier_index_snapshots", "Index snapshots written since start.",
                      lambda: maintenance.snapshots)


def create_app(ws: Workspace, sessions: Any, settings: Settings | None = None) -> FastAPI:
    """The service over workspace ``ws`` and database ``sessions``. The model, its
    threshold and the index are loaded when the app starts (lifespan) and the index
    snapshot is saved when it stops."""
    settings = settings or Settings()
    svc = Service(ws, sessions, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threads = max(1, (os.cpu_count() or 1) // settings.workers)
        if inference_engine() == "keras":
            share_cores(threads)
        svc.verifier = Verifier.open(ws, sessions, settings.model, max_pixels=settings.max_pixels,
                                     threads=threads, min_quality=settings.min_quality)
        svc.verifier.gallery_size  # noqa: B018 - load index and metadata now, not on the first request
        svc.admission = Admission(settings.workers, settings.queue)
        maintenance = Maintenance(svc.verifier, settings)
        maintenance.start()
        _gauges(svc, maintenance)
        app.state.maintenance = maintenance
        svc.clusters = ClusterRunner(sessions, MAX_CLUSTER_RUNS_WAITING)
        log.info("serving model %s with %d gallery vectors", svc.verifier.model,
                 svc.verifier.gallery_size)
        try:
            yield
        finally:
            svc.clusters.stop()
            maintenance.stop.set()
            maintenance.join(timeout=30)
            if svc.verifier.save():
                log.info("index snapshot saved")

    app = FastAPI(title="siamese-verifier", version=API_VERSION, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Face search and verification over a live gallery. Send "
                              "`Authorization: Bearer KEY` (see `verifier keys create`). Every "
                              "error body is `{code, message}`.")
    app.state.service = svc
    errors.install(app)
    for module in (search, gallery, clusters, reports, health, page):
        app.include_router(module.router)
    app.mount("/static", page.static_files(), name="static")
    app.add_middleware(Guard, service=svc)
    return app
