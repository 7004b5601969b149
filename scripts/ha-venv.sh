#!/usr/bin/env bash
# A separate virtualenv with Home Assistant, used by one test only: it validates our MQTT discovery
# payloads with Home Assistant's own schemas. HA needs Python 3.13, so it cannot share .venv.
# Prints the venv's python on stdout. Usage: scripts/ha-venv.sh
set -euo pipefail
HA_VERSION=2025.4.4   # the newest release that installs on Python 3.13.0
dest="${BCC_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bcc/ha-venv-$HA_VERSION}"
if [ -x "$dest/bin/python" ] && "$dest/bin/python" -c "import homeassistant" 2>/dev/null; then
  echo "$dest/bin/python"; exit 0
fi
py=""
for c in python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    py=$c; break
  fi
done
if [ -z "$py" ]; then
  echo "ha-venv: Python 3.13 not found (Home Assistant $HA_VERSION needs it); install python3.13" >&2
  exit 1
fi
rm -rf "$dest"
"$py" -m venv "$dest" >&2
"$dest/bin/pip" install --quiet --disable-pip-version-check "homeassistant==$HA_VERSION" >&2
echo "$dest/bin/python"
