"""The engines that embed the photos ``verifier embed`` left to do, each a generator of
``(rows, vectors of the usable rows)`` per batch: :mod:`.local` (this process) and
:mod:`.ray` (Ray actors). The caller chooses one by name and commits what it yields."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

from verifier.defaults import DEFAULT_MIN_QUALITY
from verifier.errors import VerifierError

if TYPE_CHECKING:
    from storage.workspace import Workspace

    from ..models import LoadedModel

ENGINES = ("local", "ray")


class EmbedError(VerifierError):
    """An embedding run cannot start (an unknown engine, Ray not installed)."""


def check_engine(engine: str) -> None:
    """An :class:`EmbedError` for an engine that is not one of :data:`ENGINES`."""
    if engine not in ENGINES:
        raise EmbedError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def embedding_batches(engine: str, ws: "Workspace", model: str, todo: list, batch_size: int, *,
                      loaded: "LoadedModel | None" = None, ray_address: str | None = None,
                      workers: int | None = None, min_quality: float = DEFAULT_MIN_QUALITY
                      ) -> Iterator[tuple[list, np.ndarray]]:
    """The batches of ``todo`` (``(image_id, path)`` pairs) embedded by ``engine`` with
    model version ``model`` (``loaded``, when given, for the local engine)."""
    check_engine(engine)
    if engine == "ray":
        from .ray import ray_batches

        return ray_batches(ws, model, todo, batch_size, address=ray_address, workers=workers,
                           min_quality=min_quality)
    from ..models import load_model
    from .local import local_batches

    return local_batches(loaded or load_model(ws, model), todo, batch_size, min_quality)
