"""The library's named exceptions as HTTP answers, mapped once: every error body is
``{"code": ..., "message": ...}`` with a stable code."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from storage.errors import (ConfusableName, DatabaseError, GalleryConflict, InvalidName, ModelNotFound,
                            RunNotFound, StorageError, StorageFull, WorkspaceBusy)
from storage.gallery.writes import busy, full
from verifier.errors import (DetectorUnavailable, ImageError, NoFaceFound, NoSuchFace, PoorQuality,
                             SeveralFaces, VerifierError)

from ..cluster import OtherModel, RunNotDone
from ..errors import EnrollConflict, GalleryEmpty, IdentityNotFound, NotCalibrated, PhotoNotFound, QueryError
from .settings import RETRY_AFTER_S

log = logging.getLogger(__name__)

IMAGE_STATUS = {"too_large": 413, "not_an_image": 415}
"""Other unusable photos (empty, truncated, corrupt, unreadable) are 422."""

# (exception, status, code); the first that matches wins
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (NoFaceFound, 422, "no_face"),
    (SeveralFaces, 422, "several_faces"),
    (NoSuchFace, 422, "no_such_face"),
    (PoorQuality, 422, "poor_quality"),
    (DetectorUnavailable, 503, "detector_unavailable"),
    (PhotoNotFound, 404, "photo_not_found"),
    (IdentityNotFound, 404, "identity_not_found"),
    (EnrollConflict, 409, "already_enrolled"),
    (ConfusableName, 409, "confusable_name"),
    (GalleryConflict, 409, "conflict"),
    (GalleryEmpty, 409, "gallery_empty"),
    (NotCalibrated, 409, "not_calibrated"),
    (QueryError, 409, "not_ready"),
    (InvalidName, 422, "invalid_name"),
    (ModelNotFound, 404, "model_not_found"),
    (RunNotFound, 404, "cluster_not_found"),
    (RunNotDone, 409, "not_done"),
    (OtherModel, 409, "other_model"),
    (WorkspaceBusy, 503, "busy"),
    (StorageFull, 507, "insufficient_storage"),
    (DatabaseError, 503, "database_unavailable"),
    (StorageError, 500, "storage_error"),
    (VerifierError, 422, "invalid_input"),
]

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 408: "body_timeout", 413: "too_large",
              415: "unsupported_media_type",
              422: "invalid_request", 503: "overloaded"}


class ModelLoading(Exception):
    """The service has not loaded its model yet."""


def error(status: int, code: str, message: str, headers: dict | None = None,
          **details) -> JSONResponse:
    return JSONResponse({"code": code, "message": message} | details, status_code=status,
                        headers=headers)


def library_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, ImageError):
        return error(IMAGE_STATUS.get(exc.reason, 422), exc.reason,
                     f"{exc.path}: {exc.reason.replace('_', ' ')}"
                     + (f" ({exc.detail})" if exc.detail else ""))
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            if status >= 500:
                log.warning("%s: %s", code, exc)
            details = {"faces": exc.boxes, "photo": exc.photo} if isinstance(exc, SeveralFaces) else {}
            if isinstance(exc, PoorQuality):
                details = {"quality": round(exc.score, 4), "reasons": exc.reasons}
            retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            return error(status, code, str(exc), retry, **details)
    raise exc


BUSY = ("the database is busy: another process holds its write lock; nothing was written, "
        "try again in a moment")
FULL = ("the server's disk is full or read-only: nothing was written; searches still work. "
        "Free space in the workspace and try again")


def install(app: FastAPI) -> None:
    @app.exception_handler(VerifierError)
    @app.exception_handler(StorageError)
    async def _library(_: Request, exc: Exception) -> JSONResponse:
        return library_error(exc)

    @app.exception_handler(ModelLoading)
    async def _loading(_: Request, exc: Exception) -> JSONResponse:
        return error(503, "loading", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if busy(exc):
            log.warning("busy: %s", exc)
            return error(503, "busy", BUSY, {"Retry-After": str(RETRY_AFTER_S)})
        if full(exc):
            log.warning("insufficient storage: %s", exc)
            return error(507, "insufficient_storage", FULL)
        log.exception("unexpected error")
        return error(500, "internal", "an unexpected error happened; the server log has the details")
