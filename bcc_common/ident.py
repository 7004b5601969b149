"""The identifier rule shared by site files, device profiles, scenes and MQTT role names.

Lower-case ASCII, starts with a letter, at most 48 characters: safe as an MQTT topic level, an
InfluxDB tag value, a Home Assistant unique id and a file name without escaping.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

IDENT_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
IDENT_RE = re.compile(IDENT_PATTERN)
Ident = Annotated[str, Field(pattern=IDENT_PATTERN)]
