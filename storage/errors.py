"""Named exceptions of the storage layer."""
from __future__ import annotations


class StorageError(Exception):
    """Base class of storage errors; messages say what to do next."""


class WorkspaceError(StorageError):
    """The workspace folder cannot be used."""


class InvalidName(WorkspaceError):
    """A name a user or client gave (an identity) that cannot be stored."""


class ConfusableName(InvalidName):
    """A new identity name that reads as an existing person's (another case, width
    or script: ``OBAMA``, Cyrillic ``оbama``, full-width ``ｏｂａｍａ`` beside ``obama``)."""


class GalleryConflict(StorageError):
    """A gallery write that contradicts what is stored (the photo is enrolled as
    someone else, the new name is another person), or lost a race with another
    writer more often than it is retried."""


class AlreadyEnrolled(GalleryConflict):
    """The same photo is already enrolled under another identity."""


class ModelNotFound(StorageError):
    """No such model version in the workspace."""


class VectorsMissing(StorageError, KeyError):
    """Stored vectors asked for by id are not in the database."""


class DatabaseError(StorageError):
    """The database cannot be opened or used."""


class IndexMismatch(StorageError):
    """An index file, its sidecar and the database disagree."""


class IndexStale(IndexMismatch):
    """An intact index snapshot that holds other ids than the database (it is caught
    up when loaded, so this is not damage)."""


class WorkspaceBusy(StorageError):
    """Another job holds the workspace lock."""


class DatabaseBusy(WorkspaceBusy):
    """Another process held the database's write lock for longer than a write waits
    (:data:`storage.database.BUSY_WAIT_S`); nothing was written, try again."""


class StorageFull(StorageError):
    """The workspace's disk is full or read-only: nothing was written."""


class RunNotFound(StorageError):
    """No cluster run, or no group in it, by that number."""
