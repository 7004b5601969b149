"""Summarise py-spy's collapsed stacks (``bcc bench poll --py-spy FILE``): the functions that hold the
most samples, by own time (leaf) and including callees. ``python -m bench.profile FILE [--top N]``."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "func (path/to/file.py:123)" -> "func (file.py)": lines differ per sample, functions do not.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    parts = file.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{m.group('func')} ({short})"


def summarise(text: str) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, own samples per function, samples with the function anywhere on the stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # the first entry names the process
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, own, inclusive = summarise(args.file.read_text())
    print(f"{total} samples")
    for title, counts in (("own", own), ("inclusive", inclusive)):
        print(f"-- {title}")
        for name, n in counts.most_common(args.top):
            print(f"{100 * n / max(total, 1):5.1f} %  {name}")


if __name__ == "__main__":
    main()
