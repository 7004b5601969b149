"""Broken profiles and sites are rejected with messages naming the file, device/point and problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devices.loader import DEMO_SITE, PROFILE_DIR, ConfigError, load_profiles, load_site
from tests.support.paths import FIXTURES

BAD_PROFILES = sorted((FIXTURES / "devices").glob("bad_*.yaml"))
BAD_SITES = sorted((FIXTURES / "sites").glob("bad_*.yaml"))


def expectations(path: Path) -> list[str]:
    found = re.findall(r"^# expect: (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    assert found, f"{path.name} declares no '# expect:' line"
    return found


def test_shipped_profiles_and_demo_site_are_valid() -> None:
    profiles = load_profiles()
    assert {"relay8", "videowall7", "envsensor", "sdm630"} <= set(profiles)
    loaded = load_site(DEMO_SITE)
    relays = [d for d in loaded.site.devices if d.profile == "relay8"]
    assert len(relays) == 2
    circuits = sum(len(loaded.profiles["relay8"].points) - 2 for _ in relays)
    assert circuits == 16


@pytest.mark.parametrize("path", BAD_PROFILES, ids=lambda p: p.stem)
def test_bad_profile_rejected(path: Path, tmp_path: Path) -> None:
    (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profiles([tmp_path])
    text = str(info.value)
    assert path.name in text, text
    for expected in expectations(path):
        assert expected in text, f"missing {expected!r} in:\n{text}"


def test_all_bad_profiles_reported_at_once(tmp_path: Path) -> None:
    for path in BAD_PROFILES:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profiles([tmp_path])
    for path in BAD_PROFILES:
        assert any(path.name in p for p in info.value.problems), path.name


@pytest.mark.parametrize("path", BAD_SITES, ids=lambda p: p.stem)
def test_bad_site_rejected(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_site(path, [PROFILE_DIR])
    text = str(info.value)
    for expected in expectations(path):
        assert expected in text, f"missing {expected!r} in:\n{text}"
    assert all(str(path) in p for p in info.value.problems)
