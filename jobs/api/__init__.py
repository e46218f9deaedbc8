"""The HTTP service over the loaded :class:`jobs.live.Verifier` (FastAPI).

``create_app`` is imported on first use, so the CLI starts without FastAPI."""
from __future__ import annotations

from typing import Any

from .settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
