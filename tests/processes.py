"""Killing a command-line run part-way, for the crash-safety tests."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path


def kill_after_commits(cmd: list[str], db: Path, at_least: int, timeout: float, **popen) -> int:
    """Start ``cmd`` in its own process group, wait until the SQLite database ``db``
    holds ``at_least`` embeddings (or the run ends, or ``timeout`` passes), then
    SIGKILL the whole group (the run and any processes it started, such as Ray's).
    Returns the embeddings counted just before the kill."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **popen)
    count, deadline = 0, time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                con = sqlite3.connect(db, timeout=1)
                try:
                    count = con.execute("select count(*) from embeddings").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.Error:
                pass  # not created yet, or busy: the count seen last stands
            if count >= at_least:
                break
            time.sleep(0.02)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return count
