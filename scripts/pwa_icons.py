"""Draw the web app's icons (portal/static/icon-*.png) with Pillow: a white map pin on the portal's blue.

Usage: .venv/bin/python scripts/pwa_icons.py   (rewrites the three PNGs; they are committed)
The maskable icon keeps the pin inside the central 80 % circle that launchers may crop to.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).resolve().parents[1] / "portal" / "static"
BLUE = (11, 61, 145)
WHITE = (255, 255, 255)


def icon(size: int, scale: float) -> Image.Image:
    """``scale``: the pin's height as a share of the icon (smaller for the maskable safe zone)."""
    big = size * 4  # drawn large, then reduced: smooth edges without antialiasing support
    img = Image.new("RGB", (big, big), BLUE)
    draw = ImageDraw.Draw(img)
    h = big * scale
    r = h * 0.36
    cx, cy = big / 2, big / 2 - h / 2 + r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=WHITE)
    draw.polygon(
        [(cx - r * 0.82, cy + r * 0.55), (cx + r * 0.82, cy + r * 0.55), (cx, big / 2 + h / 2)], fill=WHITE
    )
    hole = r * 0.42
    draw.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=BLUE)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    for name, size, scale in (
        ("icon-192.png", 192, 0.7),
        ("icon-512.png", 512, 0.7),
        ("icon-maskable-512.png", 512, 0.5),
    ):
        icon(size, scale).save(STATIC / name, optimize=True)


if __name__ == "__main__":
    main()
