"""One module per resource; each holds an ``APIRouter`` named ``router``."""
from __future__ import annotations

import base64
import io

from fastapi import UploadFile

from ..schemas import ErrorBody

ERROR_RESPONSES = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 413, 415, 422, 503)}


def upload_name(upload: UploadFile | None) -> str:
    """The client's file name, for messages only (never a path): its last
    component, printable characters, at most 100."""
    if upload is None:
        return "<gallery photo>"
    raw = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in raw if c.isprintable())[:100]
    return clean or "upload"


def jpeg(pixels) -> bytes:
    """An RGB array (a face chip) as JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def data_url(pixels) -> str | None:
    """A face chip as a ``data:`` URL (JPEG), or ``None``."""
    if pixels is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(pixels)).decode("ascii")
