"""The workspace: one folder with the database, model versions, indexes and reports.

Chosen by ``--home`` or ``VERIFIER_HOME``; the default is
``$XDG_DATA_HOME/siamese-verifier`` (``~/.local/share/siamese-verifier``).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFound, WorkspaceError
from .facecache import FaceCache, forget_detections
from .files import remove_stale_temporaries

ENV_HOME = "VERIFIER_HOME"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_home() -> Path:
    """``$VERIFIER_HOME``, else ``$XDG_DATA_HOME/siamese-verifier``."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "siamese-verifier"


def check_model_name(name: str) -> str:
    if not _NAME.match(name):
        raise WorkspaceError(f"invalid model name {name!r}: use letters, digits, '.', '_' "
                             "and '-' (at most 100 characters, not starting with '.' or '-')")
    return name


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder; creating it is idempotent."""

    root: Path

    @classmethod
    def open(cls, home: Path | str | None = None) -> "Workspace":
        root = Path(home).expanduser() if home else default_home()
        try:
            for sub in ("models", "indexes", "reports", "cache"):
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot use {root} as the workspace ({exc.strerror}); "
                                 f"pass --home or set {ENV_HOME} to a writable folder") from None
        ws = cls(root.resolve())
        remove_stale_temporaries(ws.models_dir)
        return ws

    @property
    def database_path(self) -> Path:
        return self.root / "verifier.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def indexes_dir(self) -> Path:
        return self.root / "indexes"

    def index_path(self, model: str) -> Path:
        """The FAISS snapshot of model version ``model``'s gallery."""
        return self.indexes_dir / f"{check_model_name(model)}.faiss"

    @property
    def enrolled_dir(self) -> Path:
        """Photos enrolled one at a time, stored by content (SHA-256)."""
        return self.root / "enrolled"

    def enrolled_path(self, sha256: str, extension: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not re.fullmatch(r"[a-z0-9]{1,5}", extension):
            raise WorkspaceError(f"not a content address: {sha256!r}.{extension!r}")
        return self.enrolled_dir / sha256[:2] / f"{sha256}.{extension}"

    @property
    def uploads_dir(self) -> Path:
        """Photos uploaded to be clustered by the service, stored by content."""
        return self.root / "uploads"

    def upload_path(self, sha256: str, extension: str) -> Path:
        return self.uploads_dir / self.enrolled_path(sha256, extension).relative_to(self.enrolled_dir)

    def is_enrolled(self, path: str | Path) -> bool:
        return Path(path).parent.parent == self.enrolled_dir

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def faces_cache_dir(self) -> Path:
        """Face detections cached by photo content, one folder per detector."""
        return self.cache_dir / "faces"

    def face_cache(self, detector: str) -> "FaceCache | None":
        """The cache of one detector's detections under ``detector`` (its name and
        revision, :func:`verifier.faces.cache_name`); ``None`` for ``none``: nothing to keep."""
        return None if detector == "none" else FaceCache(self.faces_cache_dir, detector)

    def forget(self, path: str, sha256: str) -> None:
        """Delete what the workspace keeps of a photo taken out of the gallery: its
        enrolled copy (a folder's file is the user's and stays) and its cached face
        detections (the right to be forgotten; called after the removal commits)."""
        if self.is_enrolled(path):
            Path(path).unlink(missing_ok=True)
        forget_detections(self.faces_cache_dir, sha256)

    @property
    def locks_dir(self) -> Path:
        path = self.root / "locks"
        path.mkdir(exist_ok=True)
        return path

    def model_dir(self, name: str) -> Path:
        return self.models_dir / check_model_name(name)

    def model_names(self) -> list[str]:
        """Complete model versions, oldest first (by the time recorded at training)."""
        found = []
        for entry in self.models_dir.iterdir():
            config = entry / "config.json"
            if entry.name.startswith(".") or not config.is_file():
                continue
            try:
                created = json.loads(config.read_text("utf-8")).get("created", "")
            except (OSError, ValueError):
                continue
            found.append((created, entry.name))
        return [name for _, name in sorted(found)]

    def resolve_model(self, name: str | None = None) -> str:
        """``name`` if that version exists, else the most recent one."""
        names = self.model_names()
        if name:
            if name not in names:
                known = ", ".join(names) or "none yet"
                raise ModelNotFound(f"no model version {name!r} in {self.root} (known: {known}); "
                                    "train one with `verifier train --data DIR`")
            return name
        if not names:
            raise ModelNotFound(f"no trained model in {self.root}; run `verifier train --data DIR` "
                                "first (or pass --home to the workspace that has one)")
        return names[-1]
