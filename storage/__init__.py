"""Persistence: the SQL schema and sessions, FAISS index files and the live index,
the workspace folder and atomic file writes. No TensorFlow, no HTTP."""
from __future__ import annotations

from .database import open_database
from .errors import (DatabaseError, IndexMismatch, ModelNotFound, StorageError, WorkspaceBusy,
                     WorkspaceError)
from .live_index import CatchUp, LiveIndex, open_live_index
from .workspace import Workspace

__all__ = ["CatchUp", "DatabaseError", "IndexMismatch", "LiveIndex", "ModelNotFound",
           "StorageError", "Workspace", "WorkspaceBusy", "WorkspaceError", "open_database",
           "open_live_index"]
