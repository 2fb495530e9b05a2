#!/usr/bin/env bash
# Installs what building and running the image needs, from Debian's packages, if missing:
# podman (builds deploy/Containerfile with its built-in buildah, and runs the image), runc
# (the runtime hack/podman.sh selects), binutils (strips the binary). Needs root or sudo the
# first time; does nothing once they are there.
set -euo pipefail
needed=()
command -v podman >/dev/null || needed+=(podman)
command -v runc >/dev/null || needed+=(runc)
command -v objcopy >/dev/null || needed+=(binutils)
((${#needed[@]})) || exit 0
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-image-tools: install ${needed[*]} (needs root)" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-image-tools: installing ${needed[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${needed[@]}" >&2 \
  || { "${sudo[@]}" apt-get update -q >&2 && "${sudo[@]}" apt-get install -y -q --no-install-recommends "${needed[@]}" >&2; }
