"""What routes need, injected with ``Depends``: the loaded verifier, the caller's
scope, and the bounded inference queue."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
from fastapi import Depends, HTTPException, Request

from storage.keys import allows
from storage.workspace import Workspace

from ..live import Verifier
from .errors import ModelLoading
from .metrics import Metrics
from .settings import Settings


class Admission:
    """At most ``workers`` inference calls run at once and ``queue`` more requests are
    admitted (reading their body or waiting); past that the guard refuses a request
    (503) from its headers, before its body is read, instead of piling it up. Used
    from the event loop only."""

    def __init__(self, workers: int, queue: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.capacity = workers + queue
        self.in_flight = 0

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - int(self.limiter.borrowed_tokens))

    def enter(self) -> bool:
        """Take a place for one request; ``False`` when there is none."""
        if self.in_flight >= self.capacity:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func`` on a worker thread of an admitted request."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)


@dataclass
class Service:
    """Everything the app holds for its lifetime."""

    ws: Workspace
    sessions: Any
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    verifier: Verifier | None = None
    admission: Admission | None = None
    clusters: Any = None
    """The :class:`~jobs.api.background.ClusterRunner` (while the app runs)."""


def service(request: Request) -> Service:
    return request.app.state.service


def verifier(svc: Service = Depends(service)) -> Verifier:
    if svc.verifier is None:
        raise ModelLoading("the model is still loading; retry in a moment")
    return svc.verifier


def admission(svc: Service = Depends(service)) -> Admission:
    return svc.admission


def require(needed: str) -> Callable:
    """A dependency that refuses (403) a key whose scope does not cover ``needed``."""

    def check(request: Request) -> str:
        scope = request.state.key_scope
        if not allows(scope, needed):  # the guard refused it already; kept as a second lock
            raise HTTPException(403, f"this API key has scope {scope!r}; this needs {needed!r}")
        return scope

    check.__name__ = f"require_{needed}"
    check.needed_scope = needed  # read by the guard, which decides before the body
    return check
