"""Seeded synthetic photo files for tests: a pattern per identity (as
:func:`verifier.synthetic.pattern_image` draws it), encoded as a file would be."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from verifier.synthetic import pattern_image


def png(identity: int = 0, seed: int = 1, size: int = 32, mode: str = "RGB", fmt: str = "PNG", **save) -> bytes:
    """The bytes of a ``size`` px photo of ``identity`` (noise from ``seed``), in ``fmt``
    (any format Pillow writes, ``save`` passed on) and colour ``mode``."""
    buf = io.BytesIO()
    Image.fromarray(pattern_image(identity, np.random.default_rng(seed), size)).convert(mode).save(buf, fmt, **save)
    return buf.getvalue()
