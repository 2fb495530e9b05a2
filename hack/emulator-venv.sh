#!/usr/bin/env bash
# Creates, once, the Python virtual environment the EC2/KMS emulator (tests/emulator) runs in,
# and prints the path of its python on stdout (nothing else goes to stdout).
#
# The venv lives outside git, keyed by every pinned version, so changing a pin builds a new one
# and an unchanged pin costs nothing. A marker file is written only after a complete install:
# a venv interrupted half-way has no marker and is rebuilt from scratch.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

# Exact pins that install together with moto $MOTO_VERSION on Python 3.11.
PYTEST_VERSION=8.4.2
BOTO3_VERSION=1.40.76

cache_root="${EC2R_CACHE_DIR:-$HOME/.cache/ec2-reconciler}"
venv="$cache_root/venv-moto-$MOTO_VERSION"
key="moto[server]==$MOTO_VERSION pytest==$PYTEST_VERSION boto3==$BOTO3_VERSION"
marker="$venv/.ec2r-installed"
log() { echo "emulator-venv: $*" >&2; }

if [[ -f "$marker" && "$(cat "$marker")" == "$key" && -x "$venv/bin/python" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

python="${PYTHON:-$(command -v python3 || command -v python)}"
[[ -n "$python" ]] || { log "python3 is required"; exit 1; }
log "creating $venv ($key)"
rm -rf "$venv"
mkdir -p "$cache_root"
"$python" -m venv "$venv" >&2
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $key >&2
echo "$key" > "$marker"
log "ready"
echo "$venv/bin/python"
