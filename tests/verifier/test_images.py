import io
import struct

import numpy as np
import pytest
from PIL import Image

from verifier.errors import DatasetError, ImageError
from verifier.images import decode_image, load_image, scan_dataset


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(w=20, h=10, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "CMYK", "I;16"])
def test_every_mode_becomes_rgb(mode):
    img = _rgb().convert(mode) if mode != "I;16" else Image.fromarray(
        (np.arange(200, dtype=np.uint16).reshape(10, 20) * 300))
    fmt = {"CMYK": "JPEG"}.get(mode, "PNG")
    out = decode_image(_save(img, fmt))
    assert out.dtype == np.uint8 and out.shape == (10, 20, 3)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_modes_become_rgb_in_integer_steps(mode):
    from verifier.images import _to_rgb

    img = Image.fromarray((np.arange(200).reshape(10, 20) * 300).astype(
        np.int32 if mode == "I" else np.float32), mode)
    out = _to_rgb(img)  # grey stays one plane; decode_image spreads it over three
    assert out.mode == "L" and np.asarray(out).max() >= 230


@pytest.mark.parametrize("fmt", ["TIFF", "EPS", "PSD", "ICO", "PPM", "TGA"])
def test_formats_outside_the_list_are_not_decoded(fmt):
    data = {"PSD": b"8BPS\x00\x01" + bytes(40), "EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
            }.get(fmt) or _save(_rgb() if fmt != "ICO" else _rgb(16, 16), fmt)
    with pytest.raises(ImageError) as err:
        decode_image(data)
    assert err.value.reason == "not_an_image" and "accepted format" in str(err.value)


def test_sixteen_bit_png_is_scaled_down():
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    out = decode_image(_save(Image.fromarray(arr), "PNG"))
    assert out.max() == 255


@pytest.mark.parametrize("fmt", ["JPEG", "BMP", "WEBP", "GIF"])
def test_formats(fmt):
    out = decode_image(_save(_rgb(), fmt))
    assert out.shape == (10, 20, 3)


def test_gif_uses_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(data)
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


def test_exif_orientation_is_applied():
    img = _rgb(w=30, h=10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_save(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (30, 10, 3)


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not_an_image"),
])
def test_bad_bytes(data, reason):
    with pytest.raises(ImageError) as info:
        decode_image(data, name="x.png")
    assert info.value.reason == reason
    assert "x.png" in str(info.value)


def test_truncated_file():
    data = _save(_rgb(200, 200), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.reason in ("truncated", "corrupt")


def test_pixel_limit():
    with pytest.raises(ImageError) as info:
        decode_image(_save(_rgb(100, 100), "PNG"), max_pixels=5000)
    assert info.value.reason == "too_large"


def test_huge_header_is_refused_without_decoding():
    # a real 1x1 PNG whose header claims 100000 x 100000 pixels
    import zlib
    data = bytearray(_save(_rgb(1, 1), "PNG"))
    ihdr = b"IHDR" + struct.pack(">II", 100000, 100000) + bytes(data[24:29])
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    data = bytes(data)
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.reason == "too_large"


def test_scan_records_and_skips_bad_files(tmp_path):
    a = tmp_path / "Zoë Ünicode"
    b = tmp_path / "bob"
    c = tmp_path / "carol"
    for d in (a, b, c):
        d.mkdir()
    _rgb().save(a / "fötö 1.png")
    _rgb(seed=1).save(a / "2.JPG", "JPEG")
    _rgb(seed=2).save(b / "1.png")
    (b / "empty.png").write_bytes(b"")
    (b / "corrupt.jpg").write_bytes(b"garbage")
    _rgb(seed=3).save(b / ".hidden.png")
    (b / "notes.txt").write_text("ignored")
    big = _rgb(300, 300, seed=4)
    big.save(c / "big.png")
    data = _save(_rgb(100, 100, seed=5), "PNG")
    (c / "cut.png").write_bytes(data[:200])
    (tmp_path / ".git").mkdir()
    _rgb().save(tmp_path / ".git" / "x.png")

    ds = scan_dataset(tmp_path, max_pixels=50_000)
    assert [p.path.name for p in ds.photos] == ["2.JPG", "fötö 1.png", "1.png"]
    assert ds.identities == ["Zoë Ünicode", "bob"]
    reasons = {s.path.name: s.reason for s in ds.skipped}
    assert reasons["empty.png"] == "empty"
    assert reasons["corrupt.jpg"] == "not_an_image"
    assert reasons["big.png"] == "too_large"
    assert reasons["cut.png"] in ("truncated", "corrupt")
    assert ".hidden.png" not in reasons and "notes.txt" not in reasons
    assert ds.singletons == ["bob"]
    assert "single photo" in ds.summary() and "bob" in ds.summary()
    assert len(ds.photos[0].sha256) == 64


def test_scan_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        scan_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no usable photo"):
        scan_dataset(tmp_path)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "nope.png")
    assert info.value.reason == "missing" and str(info.value).endswith("nope.png: missing (no such file)")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "folder.png")
    assert info.value.reason == "unreadable"


def test_read_header_without_decoding():
    from verifier.images import read_header

    img = _rgb(w=30, h=10)
    exif = Image.Exif()
    exif[0x0112] = 6
    assert read_header(_save(img, "JPEG", exif=exif.tobytes())) == (10, 30)
    data = _save(_rgb(200, 100), "PNG")
    assert read_header(data[: len(data) // 2]) == (200, 100)  # caught later, when decoded
    with pytest.raises(ImageError) as info:
        read_header(data, max_pixels=100)
    assert info.value.reason == "too_large"
    with pytest.raises(ImageError) as info:
        read_header(b"nope")
    assert info.value.reason == "not_an_image"
