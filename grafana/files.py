"""Where the dashboards and provisioning files are: package data of ``grafana``, via importlib.resources.

Grafana reads them by path (``paths.provisioning``, ``BCC_GRAFANA_DASHBOARDS``), so they must be real
files: a wheel installs them so, a zipped install would not and is refused with a clear error.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_dir() -> Path:
    """The installed ``grafana`` package directory (the checkout's grafana/ for an editable install)."""
    root = files("grafana")
    if not isinstance(root, Path):
        raise RuntimeError(f"grafana is installed as {root!r}; Grafana needs real files: install unzipped")
    return root


DASHBOARD_DIR = package_dir() / "dashboards"
PROVISIONING_DIR = package_dir() / "provisioning"
PROVISIONING_VARIANTS_DIR = package_dir() / "provisioning-variants"
