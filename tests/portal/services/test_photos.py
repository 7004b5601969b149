"""Photo intake by content: formats, size and pixel caps, polyglots, and metadata removal."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from portal.services.photos import PhotoRejected, clean_photo
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
    with pytest.raises(PhotoRejected, match="photo_too_large"):
        clean_photo(buf.getvalue(), 5_000_000)
