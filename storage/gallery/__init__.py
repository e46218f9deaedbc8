"""The gallery tables: reads (``reads.py``), the one write path (``writes.py``) and
the change log that followers apply (``changes.py``)."""
from __future__ import annotations

from . import changes
from .reads import *  # noqa: F401,F403 - the reading functions, as before the split
from .reads import GalleryPhoto
from .writes import (Committed, EnrollOutcome, FolderSync, NewPhoto, PreparedRow, RemovedPhoto, ScannedFile,
                     commit, enroll, identity_id, identity_name, move_face, photos_of, remove_photos,
                     rename_identity, store_batch, sync_folder, transaction)

__all__ = ["Committed", "EnrollOutcome", "commit", "FolderSync", "GalleryPhoto", "NewPhoto", "PreparedRow", "RemovedPhoto",
           "ScannedFile", "changes", "enroll", "folder_photos", "identity_id", "identity_name",
           "move_face", "photos_of", "remove_photos", "rename_identity", "store_batch", "sync_folder",
           "transaction"]
