"""Photo intake: accept JPEG, MPO, PNG or WebP by content only, refuse polyglots, re-encode without metadata.

Re-encoding to a fresh JPEG from the decoded pixels alone drops EXIF (including GPS), XMP, the JPEG
comment (COM), ICC profiles (colours are converted to sRGB first), MPF frames and any appended bytes
(FixMyStreet #2134; the JAKI photo incident in the anchors). Nothing of the upload's own metadata is
kept on purpose: the orientation is applied to the pixels before it is dropped. Files get random names in
the media folder (0700, files 0600), which is outside the static root and served only by the photo route
with restrictive headers.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

import structlog
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# MPO is what many phones write: a JPEG with further frames (depth, other lens) after it; the first
# frame is the photo.
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
# Markup that browsers sniff in "images" (HTML/SVG polyglots): refuse the upload outright.
_MARKUP = re.compile(rb"<\s*(?:html|script|svg|iframe|body|head|!doctype|\?xml|img|a\s|object|embed)", re.I)
NAME_RE = re.compile(r"\A[0-9a-f]{32}\.jpg\Z")
log = structlog.get_logger(__name__)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


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
            # Image.open reads the header only: the size is checked before any pixel is decoded
            with Image.open(io.BytesIO(raw)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise PhotoRejected("photo_bad_type")
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRejected("photo_too_many_pixels")
                probe.verify()
            with Image.open(io.BytesIO(raw)) as opened:
                opened.seek(0)  # MPO: the first frame
                opened.load()
                img = _to_srgb(ImageOps.exif_transpose(opened))
    except PhotoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own caps (89 Mpx warns, 179 Mpx refuses) are met in Image.open, before our check
        raise PhotoRejected("photo_too_many_pixels") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise PhotoRejected("photo_bad_type") from err
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    img.info.clear()  # JPEG save would otherwise copy a COM segment from the decoded file's info
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85, optimize=True)
    return CleanPhoto(out.getvalue(), img.width, img.height)


def _to_srgb(img: Image.Image) -> Image.Image:
    """RGB pixels in sRGB, so the photo's ICC profile (Display P3, Adobe RGB...) is not needed."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = img.convert("RGB") if img.mode not in ("RGB", "CMYK") else img
            converted = ImageCms.profileToProfile(rgb, source, _SRGB, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: keep the pixels as they are
    return img.convert("RGB")


def store_photo(media_dir: Path, photo: CleanPhoto) -> str:
    """Write the photo under a random 128-bit name (mode 0600, folder 0700) and return the name."""
    ensure_private_dir(media_dir)
    name = secrets.token_hex(16) + ".jpg"
    # created 0600 by the open call itself, whatever the umask: never readable by others, not even briefly
    fd = os.open(media_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fd, 0o600)  # exactly 0600 even under an unusual umask
        fh.write(photo.data)
    return name


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) and make it 0700: reporters' photos are personal data."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        try:
            path.chmod(0o700)
        except PermissionError:  # owned by another account: say so, the operator must fix it
            log.warning("media_dir_mode_not_changed", path=str(path))
