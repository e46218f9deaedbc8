"""Models and evaluation runs: ``/v1/models``, ``/v1/evaluations`` and their reports."""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from storage import evaluations as runs
from storage import models as store
from verifier.defaults import DEFAULT_REPORT_FORMAT, REPORT_FORMATS

from ..deps import Admission, Service, admission, require, service
from ..schemas import EvaluationOut, ModelOut
from ..settings import MAX_ID
from . import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["models and reports"], responses=ERROR_RESPONSES)

MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
         "json": "application/json"}
REPORT_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                 "frame-ancestors 'none'")


@router.get("/models", response_model=list[ModelOut], dependencies=[Depends(require("read"))])
def models(svc: Service = Depends(service)) -> list[ModelOut]:
    """Model versions with their embedded counts and calibrated thresholds."""
    serving = svc.verifier.model if svc.verifier else None
    with svc.sessions() as session:
        rows = store.model_counts(session)
    return [ModelOut(name=n, backbone=b, embeddings=c, threshold=t, serving=n == serving)
            for n, b, c, t in rows]


@router.get("/evaluations", response_model=list[EvaluationOut], dependencies=[Depends(require("read"))])
def evaluations(limit: int = Query(50, ge=1, le=500), svc: Service = Depends(service)):
    """Evaluation runs, newest first, with their headline metrics."""
    out = []
    with svc.sessions() as session:
        for run, model in runs.evaluation_runs(session, limit):
            m = (run.counts or {}).get("metrics") or {}
            out.append(EvaluationOut(run=run.number, model=model, split=run.params.get("split"),
                                     started=run.started, threshold=run.params.get("threshold"),
                                     accuracy=m.get("accuracy"), roc_auc=m.get("roc_auc"),
                                     eer=m.get("eer"), pairs=m.get("pairs")))
    return out


@router.get("/evaluations/{run}/report", response_class=Response,
            dependencies=[Depends(require("admin"))],
            responses={200: {"content": {v: {} for v in MEDIA.values()},
                             "description": "The report, as `verifier report` writes it"}})
async def report(run: int = PathParam(ge=1, le=MAX_ID),
                 format: str = Query(DEFAULT_REPORT_FORMAT, pattern="^(" + "|".join(REPORT_FORMATS) + ")$"),
                 svc: Service = Depends(service), queue: Admission = Depends(admission)) -> Response:
    """The report of an evaluation run (HTML with figures, CSV of every pair, or JSON).
    Drawing it takes a worker, like a search."""
    from ...report import write_report

    with svc.sessions() as session:
        if runs.evaluation_run(session, run) is None:
            raise HTTPException(404, f"no evaluation run {run}")

    def render() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return write_report(svc.sessions, Path(tmp) / f"run{run}.{format}", format, run,
                                for_client=True).read_bytes()

    body = await queue.run(render)
    headers = {"Content-Disposition": f'inline; filename="run{run}.{format}"'}
    if format == "html":  # figures are inline images, the style an inline sheet
        headers["Content-Security-Policy"] = REPORT_POLICY
    return Response(body, media_type=MEDIA[format], headers=headers)
