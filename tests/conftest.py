"""Seeded synthetic data shared by the tests."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEED_FACES = SHARED_DATA / "seed-faces"
DLIB_REFERENCE = SHARED_DATA / "dlib-reference"


def pattern_image(identity: int, rng: np.random.Generator, size: int = 64,
                  noise: float = 20.0) -> np.ndarray:
    """An RGB image whose identity is a visible pattern: a colour and a bar
    orientation fixed per identity, jittered position, plus pixel noise."""
    ident_rng = np.random.default_rng(1000 + identity)
    colour = ident_rng.uniform(40, 215, size=3)
    period = int(ident_rng.integers(6, 16))
    vertical = identity % 2 == 0
    yy, xx = np.mgrid[0:size, 0:size]
    phase = int(rng.integers(0, period))
    coord = xx if vertical else yy
    stripes = ((coord + phase) // (period // 2)) % 2
    img = np.where(stripes[..., None] == 1, colour, 255 - colour)
    img = img + rng.normal(0, noise, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_identity_set(root: Path, identities: int = 6, per_identity: int = 6, seed: int = 0,
                       size: int = 64) -> Path:
    """Write ``root/person_XX/img_YY.png`` synthetic photos; returns ``root``."""
    rng = np.random.default_rng(seed)
    for i in range(identities):
        folder = root / f"person_{i:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_identity):
            Image.fromarray(pattern_image(i, rng, size)).save(folder / f"img_{j:02d}.png")
    return root


@pytest.fixture
def synthetic_faces(tmp_path: Path) -> Path:
    return write_identity_set(tmp_path / "faces")


@pytest.fixture
def workspace(tmp_path: Path):
    from storage.workspace import Workspace

    return Workspace.open(tmp_path / "home")


@pytest.fixture
def seed_faces() -> Path:
    if not SEED_FACES.is_dir():
        pytest.skip(f"{SEED_FACES} is absent")
    return SEED_FACES
