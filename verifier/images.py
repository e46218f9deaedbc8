"""Reading photos and scanning ``ROOT/<identity>/<image>`` face datasets.

Decoding is done with Pillow; every photo is returned as an RGB ``uint8`` array with
its EXIF orientation applied, whatever its mode on disk (grayscale, palette, RGBA,
16-bit, CMYK). A file that cannot be used is described by an :class:`ImageError`
and, during a scan, recorded and skipped.
"""
from __future__ import annotations

import hashlib
import io
import logging
import unicodedata
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .defaults import DEFAULT_MAX_PIXELS
from .errors import DatasetError, ImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"})
"""File names a folder scan looks at."""

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
"""The only formats Pillow is allowed to decode (JPEG includes MPO, the multi-picture
JPEG of some cameras), for uploads and folder scans alike:
the decoders of rarely-audited formats (EPS runs Ghostscript, PSD, FITS, ...) are
never reached. Anything else is ``not_an_image``."""


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)


@dataclass(frozen=True)
class Photo:
    """One usable photo of a dataset."""

    path: Path
    identity: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Skipped:
    """A file of a dataset that could not be used, with the reason."""

    path: Path
    reason: str
    detail: str = ""


@dataclass
class Dataset:
    """The result of :func:`scan_dataset`: usable photos (sorted), skipped files."""

    root: Path
    photos: list[Photo] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def identities(self) -> list[str]:
        return sorted({p.identity for p in self.photos})

    @property
    def singletons(self) -> list[str]:
        """Identities with a single usable photo: they only yield negative pairs."""
        counts: dict[str, int] = {}
        for p in self.photos:
            counts[p.identity] = counts.get(p.identity, 0) + 1
        return sorted(k for k, v in counts.items() if v == 1)

    def summary(self) -> str:
        text = (
            f"{len(self.photos)} photos of {len(self.identities)} identities in {self.root}"
        )
        if self.skipped:
            text += f", {len(self.skipped)} files skipped"
        if self.singletons:
            text += (
                f"; {len(self.singletons)} identities have a single photo and only "
                f"yield negative pairs: {', '.join(self.singletons)}"
            )
        return text


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, or to 8-bit grey ``L`` for grey photos
    (the caller spreads it over three channels)."""
    mode = img.mode
    # in integer types: a 50-megapixel 16-bit photo must not become float64 copies
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit and 32-bit integer images: the stored range down to 8 bits, in place
        arr = np.array(img)
        img.close()
        if arr.dtype != np.uint16:
            np.clip(arr, 0, 65535, out=arr)
        if arr.size and int(arr.max()) > 255:
            np.right_shift(arr, 8, out=arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
        del arr
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * np.float32(255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img if img.mode == "L" else img.convert("RGB")


@contextmanager
def _pillow_errors(name: object) -> Iterator[None]:
    """Turn Pillow's exceptions into :class:`ImageError` with a reason code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(name, "too_large", str(exc)) from None
    except UnidentifiedImageError:
        raise ImageError(name, "not_an_image",
                         f"accepted formats: {', '.join(IMAGE_FORMATS)}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        text = str(exc)
        reason = "truncated" if "truncat" in text.lower() or "end of" in text.lower() else "corrupt"
        raise ImageError(name, reason, text) from None


def _check_size(name: object, w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise ImageError(name, "too_large", f"{w}x{h} pixels is over the limit of {max_pixels}")


def decode_image(data: bytes, *, name: object = "<bytes>",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into an ``(H, W, 3)`` RGB ``uint8`` array.

    EXIF orientation is applied; for an animated GIF the first frame is used.
    Raises :class:`ImageError` with reason ``empty``, ``too_large``, ``truncated``,
    ``corrupt`` or ``not_an_image``.
    """
    if not data:
        raise ImageError(name, "empty", "the file has zero bytes")
    with _pillow_errors(name):
        img = _open(data)
        _check_size(name, *img.size, max_pixels)
        img.seek(0)
        img.load()
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # a broken EXIF block must not lose the photo
        log.debug("ignoring unreadable EXIF in %s: %s", name, exc)
    rgb = _to_rgb(img)
    if rgb is not img:
        img.close()
    if rgb.mode == "L":  # grey: three views of one plane, not Pillow's 4-byte RGB copy
        grey = np.asarray(rgb, dtype=np.uint8)
        rgb.close()
        return np.repeat(grey[:, :, None], 3, axis=2)
    out = np.array(rgb, dtype=np.uint8)
    rgb.close()  # one full-size copy at a time (a 50-megapixel photo is 150 MB in RGB)
    return out


def read_header(data: bytes, *, name: object = "<bytes>",
                max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Width and height as displayed (EXIF rotation applied), from the header only.

    Cheap: the pixels are not decoded, so a truncated file passes here and is
    caught when it is decoded. Raises :class:`ImageError` like :func:`decode_image`.
    """
    if not data:
        raise ImageError(name, "empty", "the file has zero bytes")
    with _pillow_errors(name):
        img = _open(data)
        w, h = img.size
        _check_size(name, w, h, max_pixels)
        # EXIF from the header only (getexif() on a PNG decodes the whole file)
        raw = img.info.get("exif")
        orientation = 1
        if raw:
            exif = Image.Exif()
            exif.load(raw)
            orientation = exif.get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def image_format(data: bytes) -> str:
    """The usual file extension of an image's format (``jpg``, ``png``, ...), from its
    header; ``img`` when Pillow cannot tell."""
    try:
        fmt = (_open(data).format or "").lower()
    except Exception:  # noqa: BLE001 - any unreadable header
        return "img"
    return {"jpeg": "jpg", "mpo": "jpg"}.get(fmt, fmt or "img")


def read_error(path: Path | str, exc: OSError) -> ImageError:
    """The :class:`ImageError` of a photo file that cannot be read: ``missing`` (no
    such file) or ``unreadable`` (with the system's reason)."""
    if isinstance(exc, FileNotFoundError):
        return ImageError(path, "missing", "no such file")
    return ImageError(path, "unreadable", exc.strerror or str(exc))


def read_photo_bytes(path: Path | str) -> bytes:
    """A photo file's bytes; an unreadable file is an :class:`ImageError`."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise read_error(path, exc) from None


def load_image(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode one photo file (see :func:`decode_image`)."""
    return decode_image(read_photo_bytes(path), name=Path(path), max_pixels=max_pixels)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB array to ``size x size`` (bilinear), returning ``uint8``."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def is_image_file(path: Path) -> bool:
    return (not path.name.startswith(".") and path.is_file()
            and path.suffix.lower() in IMAGE_EXTENSIONS)


def probe(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, int, int]:
    """Check that a file decodes; return its SHA-256, width and height.

    Raises :class:`ImageError` (see :func:`decode_image`).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise read_error(path, exc) from None
    array = decode_image(data, name=path, max_pixels=max_pixels)
    return sha256_bytes(data), int(array.shape[1]), int(array.shape[0])


def iter_image_files(root: Path) -> Iterable[tuple[str, Path]]:
    """Yield ``(identity, path)`` for every candidate image under ``root/<identity>/``.

    Hidden files and folders and other extensions are ignored; order is sorted.
    """
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        identity = unicodedata.normalize("NFC", folder.name)
        for path in sorted(folder.iterdir()):
            if is_image_file(path):
                yield identity, path


def scan_dataset(root: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Dataset:
    """Scan ``ROOT/<identity>/<image>``: decode every photo once, skip the bad ones.

    Raises :class:`DatasetError` when the folder does not exist or holds no usable
    photo; a bad file is never fatal, it is listed in ``Dataset.skipped``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; pass a folder laid out as "
                           "ROOT/<person>/<photo>.jpg")
    dataset = Dataset(root=root)
    for identity, path in iter_image_files(root):
        try:
            digest, width, height = probe(path, max_pixels=max_pixels)
        except ImageError as exc:
            log.warning("skipping %s", exc)
            dataset.skipped.append(Skipped(path, exc.reason, exc.detail))
            continue
        dataset.photos.append(Photo(path, identity, digest, width, height))
    if not dataset.photos:
        raise DatasetError(f"no usable photo under {root}; expected ROOT/<person>/<photo>"
                           f" with extensions {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return dataset


def load_batch(paths: Sequence[Path], size: int, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load and resize photos into one ``(N, size, size, 3)`` ``uint8`` array."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = resize(load_image(path, max_pixels=max_pixels), size)
    return out


def face_thumbnail(image: np.ndarray, box: Sequence[float] | None, size: int = 96,
                   margin: float = 0.3) -> np.ndarray:
    """A square ``size`` x ``size`` crop around face ``box`` (``[left, top, width,
    height]``, widened by ``margin`` of its size on each side and clipped to the
    photo) for contact sheets and thumbnails; the whole photo when ``box`` is None."""
    h, w = image.shape[:2]
    if box is None:
        left, top, side = 0.0, 0.0, float(max(w, h))
        cx, cy = w / 2, h / 2
    else:
        left, top, bw, bh = (float(v) for v in box)
        side = max(bw, bh) * (1 + 2 * margin)
        cx, cy = left + bw / 2, top + bh / 2
    x0, y0 = int(max(0, round(cx - side / 2))), int(max(0, round(cy - side / 2)))
    x1, y1 = int(min(w, round(cx + side / 2))), int(min(h, round(cy + side / 2)))
    crop = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    img = Image.fromarray(np.ascontiguousarray(crop))
    img.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size), (240, 240, 240))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(canvas)
