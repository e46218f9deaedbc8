"""Cluster runs in the background of a server: one at a time on their own thread,
a few more waiting, the rest refused; a run still waiting or going when the server
stops is recorded as failed (its faces embedded so far are kept)."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

from storage import clusters as store

log = logging.getLogger(__name__)

Work = Callable[[Callable[[], bool]], object]
"""A run's work; it is given a function that says whether the server is stopping."""


class ClusterRunner:
    def __init__(self, sessions, waiting: int) -> None:
        self.sessions = sessions
        self.limit = waiting + 1
        self._jobs: queue.Queue[tuple[int, Work]] = queue.Queue()
        self._lock = threading.Lock()
        self._held = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="verifier-cluster", daemon=True)
        self._thread.start()

    def full(self) -> bool:
        """Whether a run submitted now would be refused."""
        with self._lock:
            return self._held >= self.limit or self._stopping.is_set()

    def submit(self, run_id: int, work: Work) -> bool:
        """Queue a run; ``False`` (nothing queued) when the runner is full."""
        with self._lock:
            if self._held >= self.limit or self._stopping.is_set():
                return False
            self._held += 1
        self._jobs.put((run_id, work))
        return True

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                run_id, work = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                work(self._stopping.is_set)
            except Exception:  # noqa: BLE001 - recorded on the run; the runner goes on
                log.warning("cluster run %d failed", run_id, exc_info=True)
            finally:
                with self._lock:
                    self._held -= 1

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking runs, end the one going between two batches, and record the
        waiting ones as failed."""
        self._stopping.set()
        self._thread.join(timeout)
        while True:
            try:
                run_id, _ = self._jobs.get_nowait()
            except queue.Empty:
                break
            with self.sessions.begin() as session:
                store.fail(session, run_id, "the server stopped before this run started; start it again")
