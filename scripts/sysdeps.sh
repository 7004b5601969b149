#!/usr/bin/env bash
# Make sure the Debian packages BCC runs against are installed: with apt when root, else print the
# exact command and fail. Usage: scripts/sysdeps.sh [demo|test]
set -euo pipefail
mode=${1:-test}
# binary -> Debian package
declare -A need=(
  [mosquitto]=mosquitto
  [mosquitto_passwd]=mosquitto
  [mosquitto_pub]=mosquitto-clients
  [mosquitto_sub]=mosquitto-clients
  [influxd]=influxdb  # the demo's recorder target; the recorder tests' real InfluxDB 1.6.7
)
if [ "$mode" = test ]; then
  need[mbpoll]=mbpoll
  need[socat]=socat
  need[openssl]=openssl
  need[wrk]=wrk  # the portal benchmark's independent load generator (its smoke test runs in make test)
  need[influx]=influxdb-client  # the InfluxQL shell (docs/influxdb.md)
  need[chromium]=chromium  # portal browser test (tests/portal/test_browser.py)
fi
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${need[$bin]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ]; then
  echo "sysdeps: installing Debian packages: $pkgs" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  # Debian starts the packaged mosquitto service on install where systemd runs; BCC never uses it.
  exit 0
fi
echo "sysdeps: missing Debian packages. Run as root:" >&2
echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
exit 1
