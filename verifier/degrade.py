"""Seeded degradations of a face photo, the hard conditions of real galleries:
grayscale, light from one side, low resolution, heavy JPEG, blur, a band over the
eyes. ``benchmarks/hard_photos.py`` measures the model on them; the tests use them
as hand-made hard inputs. Each takes an RGB ``uint8`` array (and, where the
degradation is placed on the face, its box and landmarks) and returns a new one."""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

Landmarks = dict[str, tuple[float, float]]
Degradation = Callable[[np.ndarray, np.random.Generator, tuple, Landmarks], np.ndarray]


def grayscale(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """Luminance only, as a scanned print or a surveillance still (three equal channels)."""
    gray = np.asarray(Image.fromarray(image).convert("L"))
    return np.repeat(gray[:, :, None], 3, axis=2)


def side_light(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """Strong light from the left or the right: brightness falls across the face to
    15-30% on the far side (a multiplicative gradient), then gamma 1.4-2.0 darkens the
    shadows further."""
    h, w = image.shape[:2]
    left, _, bw, _ = box
    low = rng.uniform(0.15, 0.30)
    x = np.clip((np.arange(w) - left) / max(bw, 1.0), 0.0, 1.0)
    ramp = 1.0 - (1.0 - low) * (x if rng.random() < 0.5 else 1.0 - x)
    lit = image.astype(np.float32) / 255.0 * ramp[None, :, None]
    lit = lit ** rng.uniform(1.4, 2.0)
    return np.clip(lit * 255.0 + 0.5, 0, 255).astype(np.uint8)


def low_resolution(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """The whole photo scaled down so that the face is 40-60 px wide (never up)."""
    target = rng.uniform(40.0, 60.0)
    scale = min(1.0, target / max(float(box[2]), 1.0))
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def heavy_jpeg(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """Saved as JPEG at quality 10-20 (blocks, ringing, colour bleeding)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=int(rng.integers(10, 21)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def gaussian_blur(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """Out of focus: a Gaussian of 3-5% of the face width."""
    radius = float(box[2]) * rng.uniform(0.03, 0.05)
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def motion_blur(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """Camera or subject motion: the average of the photo shifted along a line of
    8-12% of the face width at a random angle."""
    length = max(2, int(round(float(box[2]) * rng.uniform(0.08, 0.12))))
    angle = rng.uniform(0.0, np.pi)
    acc = np.zeros(image.shape, np.float32)
    padded = np.pad(image.astype(np.float32), ((length, length), (length, length), (0, 0)), mode="edge")
    h, w = image.shape[:2]
    for t in np.linspace(-length / 2, length / 2, length):
        dx, dy = int(round(t * np.cos(angle))), int(round(t * np.sin(angle)))
        acc += padded[length + dy:length + dy + h, length + dx:length + dx + w]
    return np.clip(acc / length + 0.5, 0, 255).astype(np.uint8)


def eye_band(image: np.ndarray, rng: np.random.Generator, box: tuple, marks: Landmarks) -> np.ndarray:
    """A dark band over the eyes (sunglasses, a censor bar): 20-30% of the face's
    height, across the face, centred on the eyes."""
    out = image.copy()
    left, top, bw, bh = (float(v) for v in box)
    eyes_y = (marks["left_eye"][1] + marks["right_eye"][1]) / 2
    half = bh * rng.uniform(0.10, 0.15)
    y0, y1 = int(max(0, eyes_y - half)), int(min(image.shape[0], eyes_y + half))
    x0, x1 = int(max(0, left - 0.05 * bw)), int(min(image.shape[1], left + 1.05 * bw))
    out[y0:y1, x0:x1] = rng.integers(0, 30)
    return out


DEGRADATIONS: dict[str, Degradation] = {
    "grayscale": grayscale, "side_light": side_light, "low_resolution": low_resolution,
    "heavy_jpeg": heavy_jpeg, "gaussian_blur": gaussian_blur, "motion_blur": motion_blur,
    "eye_band": eye_band,
}
"""Every degradation by name, in the order the benchmark reports them."""


def degrade_chip(chip: np.ndarray, name: str, rng: np.random.Generator,
                 padding: float = 0.25) -> np.ndarray:
    """Degradation ``name`` applied to an aligned face chip (the face sits on the
    alignment template, so its box and landmarks are known without a detector);
    the result has the chip's size (a low-resolution face is scaled back up, as the
    aligner would have done). What training falls back to where the detector no
    longer finds the face in the degraded photo
    (:meth:`verifier.preparation.PhotoPreparer.prepare_degraded`)."""
    from .faces import LANDMARKS, template_points

    side = chip.shape[0]
    points = template_points(side, padding)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    # the face around the landmarks: forehead above the eyes, chin below the mouth
    width, height = (x1 - x0) * 1.4, (y1 - y0) * 1.8
    box = ((x0 + x1) / 2 - width / 2, y0 - 0.45 * (y1 - y0), width, height)
    out = DEGRADATIONS[name](chip, rng, box, dict(zip(LANDMARKS, map(tuple, points))))
    if out.shape[:2] != chip.shape[:2]:
        out = np.asarray(Image.fromarray(out).resize((chip.shape[1], chip.shape[0]),
                                                     Image.Resampling.BILINEAR))
    return out
