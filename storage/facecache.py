"""Face detections cached by the SHA-256 of a photo's bytes, so that a detector runs
once per photo content (JSON files under ``HOME/cache/faces``, written atomically)."""
from __future__ import annotations

import json
from pathlib import Path

from .files import write_json_atomic


def _entry(folder: Path, sha256: str) -> Path:
    return folder / sha256[:2] / f"{sha256}.json"


def forget_detections(root: Path, sha256: str) -> None:
    """Delete the cached detections of one photo content, under every detector."""
    if root.is_dir():
        for detector in root.iterdir():
            _entry(detector, sha256).unlink(missing_ok=True)


class FaceCache:
    def __init__(self, folder: Path, detector: str) -> None:
        self.folder = Path(folder) / detector
        self.hits = 0
        self.misses = 0

    def _path(self, sha256: str) -> Path:
        return _entry(self.folder, sha256)

    def get(self, sha256: str) -> list[dict] | None:
        """The stored detections of a photo, or ``None`` if it was never detected."""
        try:
            faces = json.loads(self._path(sha256).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return faces

    def put(self, sha256: str, faces: list[dict]) -> None:
        # a cache: written whole or not at all, but not fsynced (a lost entry is
        # detected again; an fsync per photo was a tenth of embedding time)
        write_json_atomic(self._path(sha256), faces, durable=False)
