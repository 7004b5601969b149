"""The built wheel, installed into a fresh virtualenv and run outside the checkout, carries every data
file it reads: ``bcc demo``, ``bcc broker passwd`` and ``bcc grafana build`` work from it.

The wheel is built offline with the dev environment's pinned setuptools (no build isolation). The fresh
venv has no pip and sees the already-installed dependencies through a ``.pth`` line naming the dev
venv's site-packages: a path line only, so the dev venv's editable-install hook (which would map
``bcc`` to the checkout) is not run, and the venv's own site-packages (the wheel) comes first anyway.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

from mosquitto import ROLES
from mosquitto.accounts import account_passwords
from tests.bcc.demo_run import after, start_demo
from tests.support.paths import ROOT

NOT_SOURCE = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "var", "artifacts")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (not editable); returns its bin directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    # A copy: setuptools' build/ directory keeps files deleted since, so building in the checkout could
    # ship stale modules; a copy also leaves the checkout untouched.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(dist), str(src)],
        check=True, capture_output=True, cwd=tmp,
    )  # fmt: skip
    (wheel,) = dist.glob("bcc-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         str(wheel)],
        check=True, capture_output=True, cwd=tmp,
    )  # fmt: skip
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "bcc-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if str(ROOT) not in p)}


def _run_python(installed: Path, cwd: Path, code: str) -> str:
    """What ``code`` prints, run by the wheel's venv outside the checkout."""
    done = subprocess.run(
        [installed / "python", "-c", code], cwd=cwd, env=_env(), check=True, capture_output=True, text=True
    )
    return done.stdout


def test_wheel_modules_come_from_the_venv_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    code = (
        "import bcc, mosquitto, grafana, devices, portal, iot_gateway, bcc_common, bcc_contract, simulators;"
        "print('\\n'.join(m.__file__ for m in (bcc, mosquitto, grafana, devices, portal, iot_gateway,"
        " bcc_common, bcc_contract, simulators)))"
    )
    out = _run_python(installed, tmp_path, code).split()
    venv = str(installed.parent)
    assert all(path.startswith(venv) for path in out), out
    assert not any(path.startswith(str(ROOT)) for path in out)


def test_broker_passwd_and_grafana_build_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    env = {**_env(), **{f"BCC_MQTT_PASSWORD_{r.upper()}": f"{r}-secret-0123456" for r in ROLES}}
    done = subprocess.run(
        [installed / "bcc", "broker", "passwd", "--out", "passwd"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [ln.split(":")[0] for ln in (tmp_path / "passwd").read_text().splitlines()] == list(
        account_passwords(dict.fromkeys(ROLES, "x"))
    )
    done = subprocess.run(
        [installed / "bcc", "broker", "config", "--out", "conf", "--port", "18997"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "user operator" in (tmp_path / "conf" / "acl").read_text()  # the packaged ACL
    done = subprocess.run(
        [installed / "bcc", "grafana", "build", "--out", "dash"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for built in (tmp_path / "dash").iterdir():
        assert built.read_text() == (ROOT / "grafana" / "dashboards" / built.name).read_text()
    assert len(list((tmp_path / "dash").iterdir())) == 3


def test_alarm_rules_ship_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    """``bcc alarms`` finds the demo site's rules (devices/sites/alarms/) in the installed package."""
    env = {**_env(), "BCC_MQTT_PASSWORD": "alarms-secret-0123456"}
    env.pop("BCC_ALARMS_DATABASE_URL", None)
    done = subprocess.run(
        [installed / "bcc", "alarms", "--check-config", "--instance", "wheel"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shipped = yaml.safe_load((ROOT / "devices/sites/alarms/bcc_room.yaml").read_text(encoding="utf-8"))
    assert done.stdout.startswith(f"configuration ok: {len(shipped['rules'])} rules"), done.stdout


def test_portal_texts_ship_compiled_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    """The wheel carries each language's catalogue and its compiled file (built by ``make locale``), and
    the installed portal reads its texts from the compiled file even when the ``.po`` is the newer file,
    as pip leaves them: no Babel compiling catalogues in every worker at start (docs/portal.md,
    "Languages"; review item 8)."""
    code = (
        "import os, sys;"
        "from portal.i18n import LOCALE_DIR, SOURCE_CHECKOUT, catalogue_paths, translate;"
        "from portal.reference import LANGS;"
        "print(LOCALE_DIR);"
        "print(all(p.is_file() for lang in LANGS for p in catalogue_paths(lang)));"
        "[os.utime(po, (mo.stat().st_mtime + 60,) * 2) for po, mo in map(catalogue_paths, LANGS)];"
        "print(translate('nav_report', 'en'));"
        "print(SOURCE_CHECKOUT, 'babel.messages.pofile' in sys.modules)"
    )
    out = _run_python(installed, tmp_path, code).split("\n")
    assert Path(out[0]).is_relative_to(installed.parent), out
    assert out[1] == "True", out
    assert out[3] == "False False", out  # an installed package, and no .po was read
    with (ROOT / "portal/locale/en/LC_MESSAGES/messages.po").open("rb") as f:
        message = read_po(f).get("nav_report")
    assert message is not None and out[2] == message.string


def _check_grafana_paths(lines: list[str], venv: Path) -> None:
    """The printed provisioning and dashboard folders are the installed package data."""
    provisioning = Path(re.findall(r"at (\S+) \(paths.provisioning\)", after(lines, "Grafana"))[0])
    assert provisioning.is_relative_to(venv)
    assert (provisioning / "datasources" / "influxdb.yaml").is_file()
    assert (provisioning / "dashboards" / "bcc.yaml").is_file()
    dashboards = Path(next(ln for ln in lines if "BCC_GRAFANA_DASHBOARDS=" in ln).split("=")[1].split()[0])
    assert dashboards.is_relative_to(venv)
    assert len(list(dashboards.glob("*.json"))) == 3


async def test_demo_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    proc, lines = await start_demo(
        ["--duration", "5"], cwd=tmp_path, command=[str(installed / "bcc")], env=_env(), timeout_s=60
    )
    try:
        assert "Mosquitto (project config" in after(lines, "broker")
        _check_grafana_paths(lines, installed.parent)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert "BCC demo stopped." in rest.decode()


def test_backup_and_restore_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """The migrations the backup reads its head from, and the restore checks against, are package data."""
    db = tmp_path / "var" / "portal.db"
    env = {
        **_env(),
        "BCC_PORTAL_DATABASE_URL": f"sqlite:///{db}",
        "BCC_PORTAL_MEDIA_DIR": str(tmp_path / "var" / "media"),
        "BCC_PORTAL_SECRET_KEY": "wheel-test-" + "s" * 32,
    }
    for argv in (["portal", "migrate"], ["backup", "--out", "b"]):
        done = subprocess.run(
            [installed / "bcc", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    migration = json.loads((tmp_path / "b" / "manifest.json").read_text())["migration"]
    assert migration["database"] == migration["head"] and migration["head"]
    db.unlink()
    done = subprocess.run(
        [installed / "bcc", "restore", "b"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "portal database: restored at migration" in done.stdout and db.stat().st_size > 0
