"""The local engine: batches embedded in this process, the photos of a batch prepared
on every core at once while the model runs on the batch before."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from verifier.defaults import DEFAULT_MIN_QUALITY

from ..models import LoadedModel
from .rows import PREPARE_THREADS, prepare_batch


def _prefetch(items: list, load: Callable, batch_size: int) -> Iterator:
    """Yield ``load(batch)`` for each batch, decoding the next batch while the model
    runs on this one. The first batch is small so that the model starts early."""
    first = min(len(items), max(1, batch_size // 4))
    bounds = [0, first] + list(range(first + batch_size, len(items), batch_size)) + [len(items)]
    batches = [items[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load, batches[0]) if batches else None
        for i in range(len(batches)):
            result = future.result()
            if i + 1 < len(batches):
                future = pool.submit(load, batches[i + 1])
            yield result


def local_batches(loaded: LoadedModel, todo: list, batch_size: int,
                  min_quality: float = DEFAULT_MIN_QUALITY) -> Iterator[tuple[list, np.ndarray]]:
    """``(rows, vectors of the usable rows)`` per batch, in this process: the photos of a
    batch are prepared on every core at once while the model runs on the batch before."""
    with ThreadPoolExecutor(max_workers=PREPARE_THREADS) as pool:
        for rows, pixels in _prefetch(todo, lambda batch: prepare_batch(loaded, batch, pool, min_quality),
                                      batch_size):
            yield rows, (loaded.embed(pixels) if pixels is not None
                         else np.zeros((0, loaded.dimension), np.float32))
