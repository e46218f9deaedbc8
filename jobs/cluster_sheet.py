"""The contact sheet of a cluster run: one self-contained HTML file, a row of face
thumbnails per group with its suggestion, then the faces left unclustered."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from storage.files import write_text_atomic
from verifier.errors import VerifierError
from verifier.images import decode_image, face_thumbnail, read_photo_bytes

from .cluster import ClusterRun, GroupFace

THUMB = 96
"""Thumbnail side in pixels."""
PER_ROW = 40
"""Faces shown per group at most (the rest are counted)."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem} .meta{color:#555}
section{margin:1rem 0;padding:.5rem 0;border-top:1px solid #ddd}
h2{font-size:1.05rem;margin:.3rem 0} .hint{color:#0a5;font-weight:normal}
.faces{display:flex;flex-wrap:wrap;gap:4px}
figure{margin:0;width:96px;font-size:10px;text-align:center;overflow:hidden}
figure img{width:96px;height:96px;border-radius:4px;display:block}
figcaption{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:1.5}
.missing{width:96px;height:96px;background:#eee;display:flex;align-items:center;justify-content:center}
"""


class _Photos:
    """Decoded photos, each read once for all its faces."""

    def __init__(self) -> None:
        self._seen: dict[str, np.ndarray | None] = {}

    def get(self, path: str) -> np.ndarray | None:
        if path not in self._seen:
            try:
                self._seen[path] = decode_image(read_photo_bytes(Path(path)), name=path)
            except VerifierError:
                self._seen[path] = None
        return self._seen[path]


def _figure(face: GroupFace, photos: _Photos) -> str:
    from PIL import Image

    label = html.escape(Path(face.photo).name)
    image = photos.get(face.path)
    if image is None:
        return f'<figure><div class="missing">gone</div><figcaption>{label}</figcaption></figure>'
    buf = io.BytesIO()
    Image.fromarray(face_thumbnail(image, face.box, THUMB)).save(buf, "JPEG", quality=85)
    src = base64.b64encode(buf.getvalue()).decode()
    return (f'<figure title="{html.escape(face.photo)}"><img alt="{label}" '
            f'src="data:image/jpeg;base64,{src}"><figcaption>{label}</figcaption></figure>')


def _row(title: str, faces: list[GroupFace], photos: _Photos) -> str:
    shown = "".join(_figure(f, photos) for f in faces[:PER_ROW])
    more = f"<p>... and {len(faces) - PER_ROW} more faces</p>" if len(faces) > PER_ROW else ""
    return f'<section><h2>{title}</h2><div class="faces">{shown}</div>{more}</section>'


def sheet_html(run: ClusterRun) -> str:
    """The contact sheet of a finished run as one HTML document (images inline)."""
    photos = _Photos()
    rows = []
    for g in run.groups:
        hint = ""
        if g.named:
            hint = f' <span class="hint">named {html.escape(g.named)}</span>'
        elif g.suggestion:
            hint = (f' <span class="hint">probably {html.escape(g.suggestion)} '
                    f'(distance {g.distance:.3f})</span>')
        rows.append(_row(f"Group {g.cluster}: {g.size} faces{hint}", g.faces, photos))
    if run.alone:
        rows.append(_row(f"Unclustered: {len(run.alone)} faces", run.alone, photos))
    c = run.counts
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Cluster run {run.run}</title>"
            f"<style>{STYLE}</style></head><body><h1>Cluster run {run.run}: {len(run.groups)} people</h1>"
            f'<p class="meta">model {html.escape(run.model)}, threshold {run.threshold:.4f}, '
            f"{c.get('faces', 0)} faces in {c.get('photos', 0)} photos, groups of at least "
            f"{run.min_size}. Name a group with <code>verifier cluster name {run.run} GROUP NAME</code>.</p>"
            + "".join(rows) + "</body></html>\n")


def write_sheet(run: ClusterRun, out: Path) -> Path:
    write_text_atomic(out, sheet_html(run))
    return out
