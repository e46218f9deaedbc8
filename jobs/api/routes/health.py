"""``/healthz``, ``/readyz`` and ``/metrics`` (no key needed)."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..deps import Service, service
from ..metrics import CONTENT_TYPE
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(svc: Service = Depends(service)):
    """The model and the index are loaded and the index has applied every gallery
    change in the database (the change log)."""
    v = svc.verifier
    if v is None:
        return JSONResponse({"status": "loading", "detail": "the model is loading"}, 503)
    size = v.gallery_size
    lag = v.lag()
    if lag.changes:
        return JSONResponse({"status": "catching_up",
                             "detail": f"{lag.changes} gallery changes behind ({lag.seconds:.1f} s); "
                                       f"index {size} vectors at change {v.seq}"}, 503)
    return Health(status="ready", detail=f"model {v.model}, {size} vectors, change {v.seq}")


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(svc: Service = Depends(service)) -> Response:
    """Request counts and latency histograms per route, queue depth, gallery size
    (Prometheus text format)."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
