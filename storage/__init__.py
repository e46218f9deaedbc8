"""Persistence: the SQL schema and sessions, FAISS index files and the live index,
the workspace folder and atomic file writes. No TensorFlow, no HTTP."""
from __future__ import annotations

from .database import open_database
from .errors import (DatabaseError, GalleryConflict, IndexMismatch, ModelNotFound, StorageError,
                     WorkspaceBusy, WorkspaceError)
from .follower import CatchUp, Follower
from .live_index import LiveIndex
from .workspace import Workspace

__all__ = ["CatchUp", "DatabaseError", "Follower", "GalleryConflict", "IndexMismatch", "LiveIndex",
           "ModelNotFound", "StorageError", "Workspace", "WorkspaceBusy", "WorkspaceError",
           "open_database"]
