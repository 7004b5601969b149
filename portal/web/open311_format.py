"""Open311 output: JSON, XML in the spec's element layout, and the spec's error array."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from fastapi.responses import Response

from portal.services.textclean import clean_text


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        self.status = status
        self.description = description
        super().__init__(description)


def _xml(value: Any, parent: ET.Element) -> None:
    for key, item in value.items():
        child = ET.SubElement(parent, key)
        if isinstance(item, list):
            for entry in item:
                _xml(entry, ET.SubElement(child, "attribute" if key == "attributes" else "value"))
        elif isinstance(item, dict):
            _xml(item, child)
        elif isinstance(item, bool):
            child.text = "true" if item else "false"
        elif item is not None:
            # stored before input was cleaned, or typed by staff: never a character XML 1.0 forbids
            child.text = clean_text(str(item))


def respond(
    fmt: str, root: str, item: str, data: list[dict[str, Any]] | dict[str, Any], status: int = 200
) -> Response:
    if fmt == "json":
        return Response(
            json.dumps(data, ensure_ascii=False), status, media_type="application/json; charset=utf-8"
        )
    top = ET.Element(root)
    for entry in data if isinstance(data, list) else [data]:
        _xml(entry, ET.SubElement(top, item) if isinstance(data, list) else top)
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")
    return Response(body, status, media_type="text/xml; charset=utf-8")


def error_response(fmt: str, status: int, description: str) -> Response:
    return respond(
        fmt if fmt in ("json", "xml") else "json",
        "errors",
        "error",
        [{"code": status, "description": description}],
        status,
    )
