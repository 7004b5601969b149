#!/usr/bin/env bash
# A separate virtualenv with Home Assistant for two tests: one validates our MQTT discovery payloads
# with Home Assistant's own schemas, one runs a real Home Assistant core against our broker, gateway
# and simulators (tests/iot_gateway/test_home_assistant.py). HA needs Python 3.13, so it cannot share
# .venv. Prints the venv's python on stdout. Usage: scripts/ha-venv.sh
set -euo pipefail
HA_VERSION=2025.4.4   # the newest release that installs on Python 3.13.0
# Requirements of the integrations that core loads in the test (pinned in their manifests: mqtt,
# frontend, isal); it runs `hass --skip-pip`, so they are installed here, never while a test runs.
EXTRAS=(paho-mqtt==2.1.0 home-assistant-frontend==20250411.0 isal==1.7.1)
CHECK="import homeassistant, paho.mqtt, hass_frontend, isal"
dest="${BCC_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bcc/ha-venv-$HA_VERSION}"
if [ -x "$dest/bin/python" ] && "$dest/bin/python" -c "import homeassistant" 2>/dev/null; then
  if ! "$dest/bin/python" -c "$CHECK" 2>/dev/null; then  # a venv made before the extras were added
    "$dest/bin/pip" install --quiet --disable-pip-version-check "${EXTRAS[@]}" >&2
  fi
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
"$dest/bin/pip" install --quiet --disable-pip-version-check "homeassistant==$HA_VERSION" "${EXTRAS[@]}" >&2
echo "$dest/bin/python"
