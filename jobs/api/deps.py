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
from .errors import Overloaded
from .metrics import Metrics
from .settings import Settings


class Admission:
    """At most ``workers`` inference calls run at once and ``queue`` more wait;
    past that a request is refused at once (503) instead of piling up."""

    def __init__(self, workers: int, queue: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.capacity = workers + queue
        self.in_flight = 0

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - int(self.limiter.borrowed_tokens))

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.in_flight >= self.capacity:
            raise Overloaded()
        self.in_flight += 1
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)
        finally:
            self.in_flight -= 1


@dataclass
class Service:
    """Everything the app holds for its lifetime."""

    ws: Workspace
    sessions: Any
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    verifier: Verifier | None = None
    admission: Admission | None = None


def service(request: Request) -> Service:
    return request.app.state.service


def verifier(svc: Service = Depends(service)) -> Verifier:
    if svc.verifier is None:
        raise HTTPException(503, "the model is still loading")
    return svc.verifier


def admission(svc: Service = Depends(service)) -> Admission:
    return svc.admission


def require(needed: str) -> Callable:
    """A dependency that refuses (403) a key whose scope does not cover ``needed``."""

    def check(request: Request) -> str:
        scope = request.state.key_scope
        if not allows(scope, needed):
            raise HTTPException(403, f"this API key has scope {scope!r}; this needs {needed!r}")
        return scope

    check.__name__ = f"require_{needed}"
    return check
