"""Photo intake by content: formats, size and pixel caps, polyglots, metadata removal, file modes."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from portal.services.photos import CleanPhoto, PhotoRejected, clean_photo, store_photo
from tests.support.portal_app import jpeg


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_become_plain_jpeg(fmt: str) -> None:
    clean = clean_photo(jpeg(fmt=fmt, gps=fmt == "JPEG"), 5_000_000)
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.format == "JPEG" and not img.getexif() and (img.width, img.height) == (64, 48)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "photo_empty"),
        (b"GIF89a" + bytes(40), "photo_bad_type"),
        (b"<?xml version='1.0'?><svg/>", "photo_bad_type"),
        (jpeg() + b"<!DOCTYPE html><p>", "photo_bad_type"),
        (jpeg()[:200], "photo_bad_type"),  # truncated
        (jpeg(), "photo_too_large"),  # over a tiny cap
    ],
)
def test_rejections(data: bytes, reason: str) -> None:
    with pytest.raises(PhotoRejected) as err:
        clean_photo(data, 500 if reason == "photo_too_large" else 5_000_000)
    assert err.value.reason == reason


def test_decompression_bomb_is_refused() -> None:
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")  # 81 Mpx in a few KB
    with pytest.raises(PhotoRejected, match="photo_too_many_pixels"):
        clean_photo(buf.getvalue(), 5_000_000)


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """The JPEG's marker segments up to the scan (marker, payload), then what follows the image."""
    assert data[:2] == b"\xff\xd8"
    out, i = [], 2
    while True:
        assert data[i] == 0xFF
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((marker, data[i + 4 : i + 2 + length]))
        i += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the end-of-image marker
            end = data.index(b"\xff\xd9", i) + 2
            out.append((0xD9, data[end:]))
            return out


def with_header_size(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) declares another size: what a decompression bomb looks like
    to the header reader, without allocating its pixels in the test."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def test_every_metadata_segment_is_dropped() -> None:
    """EXIF with GPS, XMP, ICC and the JPEG comment (COM) all go: only the JFIF header, tables, frame
    and scan remain, and nothing after the image."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (3.0, 36.0, 0.0), 3: "E", 4: (98.0, 29.0, 0.0)}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(
        buf,
        "JPEG",
        exif=exif,
        comment=b"Pelapor: Siti, 0812-3456-7890",
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>Siti</x:xmpmeta>",
        icc_profile=srgb,
    )
    raw = buf.getvalue() + b"trailing bytes"
    assert {m for m, _ in segments(raw)} >= {0xE1, 0xE2, 0xFE}  # the upload has them all
    cleaned = clean_photo(raw, 5_000_000).data
    found = segments(cleaned)
    assert {m for m, _ in found} <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDD, 0xDA, 0xD9}, found
    assert found[0][1].startswith(b"JFIF\x00") and found[-1] == (0xD9, b"")
    assert b"Siti" not in cleaned and b"PhoneMaker" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as img:
        assert not img.getexif() and not img.info.get("comment") and not img.info.get("icc_profile")


def _mpo(first: tuple[int, int, int], second: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), first).save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 24), second)]
    )
    return buf.getvalue()


def test_mpo_from_a_phone_is_accepted_as_its_first_frame() -> None:
    raw = _mpo((200, 30, 30), (30, 30, 200))
    with Image.open(io.BytesIO(raw)) as probe:
        assert probe.format == "MPO" and getattr(probe, "n_frames", 1) == 2  # a real MPO file
    clean = clean_photo(raw, 5_000_000)
    assert (clean.width, clean.height) == (64, 48)
    assert all(m != 0xE2 for m, _ in segments(clean.data))  # no MPF index of frames left
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.format == "JPEG" and getattr(img, "n_frames", 1) == 1
        r, _g, b = img.convert("RGB").getpixel((32, 24))  # type: ignore[misc]
        assert r > 150 and b < 80  # the first (red) frame, not the second (blue)


@pytest.mark.parametrize(
    "size",
    [
        (20_000, 10_000),  # 200 Mpx: Pillow refuses it in Image.open (DecompressionBombError)
        (10_000, 10_000),  # 100 Mpx: Pillow warns (DecompressionBombWarning)
        (8_000, 5_100),  # 40.8 Mpx: over our own cap
    ],
)
def test_too_many_pixels_is_a_clear_refusal_before_decoding(size: tuple[int, int]) -> None:
    raw = with_header_size(jpeg(), *size)
    with pytest.raises(PhotoRejected) as err:
        clean_photo(raw, 5_000_000)
    assert err.value.reason == "photo_too_many_pixels"


@pytest.fixture
def umask() -> Iterator[None]:
    """A permissive umask (0000), as a careless service manager may set: modes must not depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask")
def test_stored_photos_are_private_whatever_the_umask(tmp_path: Path) -> None:
    media = tmp_path / "media"
    name = store_photo(media, CleanPhoto(jpeg(), 64, 48))
    assert stat.S_IMODE(media.stat().st_mode) == 0o700
    assert stat.S_IMODE((media / name).stat().st_mode) == 0o600
    older = tmp_path / "older"
    older.mkdir(mode=0o755)  # a media folder from an earlier version
    store_photo(older, CleanPhoto(jpeg(), 64, 48))
    assert stat.S_IMODE(older.stat().st_mode) == 0o700
