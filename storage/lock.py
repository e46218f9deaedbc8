"""File locks (released when the process dies): an exclusive lock on a workspace
job, and a lock that keeps an index snapshot and its sidecar together."""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import WorkspaceBusy


@contextmanager
def job_lock(path: Path, *, wait: bool = False, what: str = "job") -> Iterator[None]:
    """Hold ``path`` locked (``flock``); a second holder fails at once with
    :class:`WorkspaceBusy`, or blocks when ``wait`` is true. The kernel drops the
    lock if the process is killed, so a crash never leaves it stuck."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise WorkspaceBusy(f"another {what} is running on this workspace ({holder}); "
                                "wait for it to finish, or pass --wait to queue behind it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def pair_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``path`` locked (``flock``), waiting for it: shared by readers, exclusive
    for a writer, so that two files written one after the other (an index snapshot
    and its sidecar) are never read or written half by one process and half by
    another. Where the lock file cannot be created (a read-only folder) nothing is
    locked: nobody can write there either."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
