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


Box = tuple[int, int, int, int]


def compose_group(photos: "list[Path]", sides: "list[int]", *, gap: int = 30,
                  background: tuple[int, int, int] = (90, 90, 90)) -> tuple[bytes, list[Box]]:
    """A group photo made of ``photos`` side by side, each resized to a square of its
    side in ``sides`` (tops staggered), as PNG bytes, with where each photo was pasted
    (``[left, top, width, height]``): test and benchmark data for multi-face paths."""
    import io

    from PIL import Image

    width = sum(sides) + gap * (len(sides) + 1)
    height = max(sides) + 2 * gap
    canvas = Image.new("RGB", (width, height), background)
    placed: list[Box] = []
    x = gap
    for i, (photo, side) in enumerate(zip(photos, sides)):
        top = gap + (i % 2) * (max(sides) - side)
        canvas.paste(Image.open(photo).convert("RGB").resize((side, side)), (x, top))
        placed.append((x, top, side, side))
        x += side + gap
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue(), placed
