#!/usr/bin/env bash
# Builds the controller's container image from deploy/Containerfile with podman (buildah
# inside), without pulling any base image, into the project's image storage (see
# hack/podman.sh), and writes it as an OCI archive to load anywhere (`podman load`,
# `skopeo copy oci-archive:... docker://registry/...`).
#
#   hack/build-image.sh [--binary PATH] [--tag NAME:TAG] [--out FILE]
#
# Without --binary it builds the release binary. The tests pass the debug binary they already
# built (stripped here), which saves a release build in CI. Prints the archive's path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="" tag="ec2-reconciler:dev" out=""
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "build-image: $*" >&2; }
"$root/hack/install-image-tools.sh" >&2

if [[ -z "$binary" ]]; then
  log "building the release binary"
  (cd "$root" && cargo build --release -p ec2-reconciler >&2)
  binary="$root/target/release/ec2-reconciler"
fi
[[ -x "$binary" ]] || { log "no executable at $binary"; exit 1; }

state="$root/.local/image"
context="$state/context"
rm -rf "$context"
mkdir -p "$context/rootfs/etc/ssl/certs"
objcopy --strip-all "$binary" "$context/ec2-reconciler"

# Every shared object the binary loads, at the path it loads it from, each from a Debian
# package (dpkg -S fails the build for a file no package owns).
while read -r lib; do
  real="$(readlink -f "$lib")"
  dpkg -S "$lib" >/dev/null 2>&1 || dpkg -S "$real" >/dev/null || { log "$lib belongs to no Debian package"; exit 1; }
  mkdir -p "$context/rootfs$(dirname "$lib")"
  cp "$real" "$context/rootfs$lib"
done < <(ldd "$context/ec2-reconciler" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')

# The CA bundle that Debian's ca-certificates package generates; the AWS SDK reads the
# system's roots.
bundle=/etc/ssl/certs/ca-certificates.crt
dpkg -s ca-certificates >/dev/null 2>&1 && [[ -s "$bundle" ]] || { log "ca-certificates is not installed"; exit 1; }
cp "$bundle" "$context/rootfs/etc/ssl/certs/"

# A name for the non-root user, for tools that look it up; it owns nothing in the image.
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' > "$context/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$context/rootfs/etc/group"

out="${out:-$state/ec2-reconciler.oci.tar}"
# chroot isolation: the Containerfile runs nothing (it only copies), so the build needs no
# user namespace or runtime.
"$root/hack/podman.sh" build --isolation chroot --pull=never -f "$root/deploy/Containerfile" -t "$tag" "$context" >&2
rm -f "$out"
"$root/hack/podman.sh" save --format oci-archive -o "$out" "$tag" >&2
echo "$out"
