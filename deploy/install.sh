#!/bin/sh
# The first install on a server, from a BCC checkout or release tarball, as root:
#   deploy/install.sh --settings /etc/bcc/install.yaml
# Makes /opt/bcc/venv with this checkout installed in it (once; Debian package python3-venv), then runs
# `bcc install --source <this checkout>` from it with the same arguments, which keeps the venv in step
# with the checkout on later runs (docs/operations.md, "Install").
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
venv=/opt/bcc/venv
if [ ! -x "$venv/bin/bcc" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$src"
fi
exec "$venv/bin/bcc" install --source "$src" "$@"
