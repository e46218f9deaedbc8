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


def identity_mixture(people: int, per_person: int | tuple[int, int] = 8, dim: int = 128, *,
                     spread: float = 0.025, lookalikes: float | None = None,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded face-like vectors and their true people: ``people`` centres at random
    on the unit sphere (far apart in many dimensions, as different people are), each
    with ``per_person`` photos (or a count drawn from ``(low, high)``) scattered
    around it with per-dimension deviation ``spread`` times a per-person factor in
    [0.7, 1.3]. With ``dim=128`` and the default spread two photos of one person lie
    about 0.4 apart and two people about 1.4: the scale of dlib's descriptors (same
    person under 0.6). With ``lookalikes`` every odd-numbered person's centre is
    moved to about that distance from the person before (look-alike pairs, where
    single linkage chains two people together). Returns ``(vectors float32 (n, dim), labels int64 (n,))``."""
    rng = np.random.default_rng(seed)
    if isinstance(per_person, tuple):
        counts = rng.integers(per_person[0], per_person[1] + 1, size=people)
    else:
        counts = np.full(people, per_person)
    labels = np.repeat(np.arange(people, dtype=np.int64), counts)
    centres = rng.standard_normal((people, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    if lookalikes is not None:
        step = rng.standard_normal((people // 2, dim)).astype(np.float32)
        step *= lookalikes / np.linalg.norm(step, axis=1, keepdims=True)
        centres[1::2][:len(step)] = centres[0::2][:len(step)] + step
    scale = (spread * rng.uniform(0.7, 1.3, size=people)).astype(np.float32)
    vectors = centres[labels] + rng.standard_normal((len(labels), dim)).astype(np.float32) \
        * scale[labels, None]
    return vectors.astype(np.float32), labels


def face_free_images(n: int = 60, seed: int = 0) -> list[np.ndarray]:
    """Seeded RGB images with no face in them, 150-500 px a side: noise, gradients,
    checkerboards, smooth colour blobs and wave patterns in turn (what a detector
    must not call a face; the benchmarks add crops of real photos' backgrounds)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        h, w = (int(v) for v in rng.integers(150, 500, 2))
        y, x = np.mgrid[0:h, 0:w]
        kind = k % 5
        if kind == 0:
            image = rng.integers(0, 256, (h, w, 3))
        elif kind == 1:
            image = np.stack([(x * rng.uniform(0.2, 2) + y * rng.uniform(0.2, 2)) % 256] * 3, -1)
        elif kind == 2:
            period = int(rng.integers(4, 40))
            image = np.stack([((x // period + y // period) % 2) * 255] * 3, -1)
        elif kind == 3:
            small = rng.uniform(0, 255, (max(2, h // 40), max(2, w // 40), 3)).astype(np.uint8)
            image = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))
        else:
            image = np.stack([127 + 100 * np.sin(x / rng.uniform(3, 30)) * np.cos(y / rng.uniform(3, 30))] * 3, -1)
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return out
