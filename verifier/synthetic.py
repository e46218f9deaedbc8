"""Seeded synthetic identity sets: images whose identity is a visible pattern.

Used by the tests and benchmarks, and handy for a smoke test of a new install.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pattern_image(identity: int, rng: np.random.Generator, size: int = 64,
                  noise: float = 20.0) -> np.ndarray:
    """An RGB ``uint8`` image: stripes whose colour, period and orientation are fixed
    per identity, at a random phase, plus Gaussian pixel noise."""
    ident_rng = np.random.default_rng(1000 + identity)
    colour = ident_rng.uniform(40, 215, size=3)
    period = int(ident_rng.integers(6, 16))
    yy, xx = np.mgrid[0:size, 0:size]
    coord = xx if identity % 2 == 0 else yy
    phase = int(rng.integers(0, period))
    stripes = ((coord + phase) // (period // 2)) % 2
    img = np.where(stripes[..., None] == 1, colour, 255 - colour)
    img = img + rng.normal(0, noise, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_identity_set(root: Path, identities: int = 6, per_identity: int = 6, seed: int = 0,
                       size: int = 64, noise: float = 20.0) -> Path:
    """Write ``root/person_XX/img_YY.png``; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(identities):
        folder = Path(root) / f"person_{i:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_identity):
            Image.fromarray(pattern_image(i, rng, size, noise)).save(folder / f"img_{j:02d}.png")
    return Path(root)
