"""Photo intake: accept JPEG, PNG or WebP by content only, refuse polyglots, re-encode without metadata.

Re-encoding to a fresh JPEG drops EXIF (including GPS), XMP, ICC comments and any appended bytes
(FixMyStreet #2134; the JAKI photo incident in the anchors). Files get random names in the media folder,
which is outside the static root and served only by the photo route with restrictive headers.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
# Markup that browsers sniff in "images" (HTML/SVG polyglots): refuse the upload outright.
_MARKUP = re.compile(rb"<\s*(?:html|script|svg|iframe|body|head|!doctype|\?xml|img|a\s|object|embed)", re.I)
NAME_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")


class PhotoRejected(ValueError):
    """The upload is not an acceptable photo; ``reason`` is a message key of ``portal.i18n``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    width: int
    height: int


def clean_photo(raw: bytes, max_bytes: int) -> CleanPhoto:
    """Validate ``raw`` and return it re-encoded as a JPEG without any metadata."""
    if not raw:
        raise PhotoRejected("photo_empty")
    if len(raw) > max_bytes:
        raise PhotoRejected("photo_too_large")
    if _MARKUP.search(raw):
        raise PhotoRejected("photo_bad_type")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise PhotoRejected("photo_bad_type")
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRejected("photo_too_large")
                probe.verify()
            with Image.open(io.BytesIO(raw)) as opened:
                opened.load()
                img: Image.Image = ImageOps.exif_transpose(opened).convert("RGB")
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as err:
        raise PhotoRejected("photo_bad_type") from err
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85, optimize=True)
    return CleanPhoto(out.getvalue(), img.width, img.height)


def store_photo(media_dir: Path, photo: CleanPhoto) -> str:
    """Write the photo under a random 128-bit name (mode 0640) and return the name."""
    media_dir.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(16) + ".jpg"
    path = media_dir / name
    with open(path, "xb") as fh:
        fh.write(photo.data)
    path.chmod(0o640)
    return name
