"""What every engine does to a batch of photos before the model: read, decode, detect,
align and judge each photo on a pool of threads, into its row and branch input."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from storage import gallery
from verifier.defaults import DEFAULT_MIN_QUALITY
from verifier.errors import ImageError, NoFaceFound, PoorQuality
from verifier.preparation import FaceStatus
from verifier.quality import require_quality

from ..models import LoadedModel

PREPARE_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads that prepare (read, decode, detect, align) the photos of a batch."""

Row = gallery.PreparedRow


def prepare_row(loaded: LoadedModel, image_id: int, path: str,
                min_quality: float = DEFAULT_MIN_QUALITY) -> tuple[Row, np.ndarray | None]:
    """One photo of a batch: its row, and its branch input unless it is unusable (the
    reason is recorded instead: a face under ``min_quality`` is ``poor_quality``).
    Shared by every engine."""
    try:
        prepared = loaded.preparer.prepare(Path(path))
        require_quality(prepared.quality, min_quality, path)
    except ImageError as exc:
        return Row(image_id, path, exc.reason, None), None
    except NoFaceFound:
        return Row(image_id, path, FaceStatus.NO_FACE.value, None), None
    except PoorQuality as exc:
        return Row(image_id, path, f"poor_quality: {', '.join(exc.reasons)} ({exc.score:.2f})", None), None
    quality = None if prepared.quality is None else prepared.quality.score
    face = prepared.face
    box = None if face is None else prepared.box
    return Row(image_id, path, None, prepared.status.value, quality, box,
               None if face is None else face.landmarks), prepared.pixels


def prepare_batch(loaded: LoadedModel, batch: list, pool: ThreadPoolExecutor,
                  min_quality: float = DEFAULT_MIN_QUALITY) -> tuple[list[Row], np.ndarray | None]:
    """The rows of a batch of ``(image_id, path)`` and the stacked branch inputs of its
    usable photos, prepared on ``pool``'s threads (decoding, the detector's networks
    and alignment release the GIL). Shared by every engine."""
    done = list(pool.map(lambda item: prepare_row(loaded, *item, min_quality), batch))
    pixels = [p for _, p in done if p is not None]
    return [row for row, _ in done], (np.stack(pixels) if pixels else None)
