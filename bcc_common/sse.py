"""Server-Sent Events framing, shared by the operator console and the video-wall streams."""

from __future__ import annotations

import json
from typing import Any


def sse_event(kind: str, data: Any) -> str:
    """One SSE frame: ``event: <kind>`` and compact JSON ``data``, ended by a blank line."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
