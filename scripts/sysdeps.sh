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
  # deploy/ checks (tests/deploy/): the alert rules, the nginx site, the systemd units (whose
  # ExecStartPost readiness poll runs curl, which systemd-analyze verify wants to find)
  need[promtool]=prometheus
  need[nginx]=nginx
  need[systemd-analyze]=systemd
  need[curl]=curl
  need[pg_dump]=postgresql-client  # bcc backup/restore of a PostgreSQL portal (tests/bcc/test_backup_restore.py)
  need[pg_restore]=postgresql-client
  # the production layout on three network namespaces (tests/deploy/test_netns_e2e.py): ip netns and
  # veth, the browser's DevTools bridge, and setpriv to run the namespace's own PostgreSQL as postgres
  need[ip]=iproute2
  need[setpriv]=util-linux
fi
# The portal's production path is tested against a real PostgreSQL at 127.0.0.1:5432 (user postgres,
# trust; BCC_TEST_POSTGRES overrides). A fresh Debian 12 has none running: install and start one.
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
ensure_postgres() {
  [ -n "${BCC_TEST_POSTGRES:-}" ] && return 0  # the tests were pointed at another server
  pg_answers && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "sysdeps: no PostgreSQL answers on 127.0.0.1:5432 (the portal tests need one). Run as root:" >&2
    echo "  sudo apt-get install -y postgresql && sudo pg_ctlcluster 15 main start" >&2
    echo "  and allow 'host all postgres 127.0.0.1/32 trust' in /etc/postgresql/15/main/pg_hba.conf" >&2
    echo "  (or set BCC_TEST_POSTGRES=postgresql://USER:PASSWORD@HOST:PORT/postgres)" >&2
    return 1
  fi
  echo "sysdeps: installing and starting PostgreSQL for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  command -v pg_ctlcluster >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq postgresql >/dev/null; }
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # test machines only: the superuser from loopback without a password, as the tests expect
  grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" ||
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main reload
  for _ in $(seq 1 100); do pg_answers && return 0; sleep 0.1; done  # readiness poll, 10 s at most
  echo "sysdeps: PostgreSQL $version did not start on 127.0.0.1:5432" >&2
  return 1
}
if [ "$mode" = test ]; then
  ensure_postgres
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
  # Debian starts the packaged mosquitto (and nginx, prometheus) services on install where systemd
  # runs; the tests never use them (tests/deploy/ runs only `nginx -t` and promtool).
  exit 0
fi
echo "sysdeps: missing Debian packages. Run as root:" >&2
echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
exit 1
