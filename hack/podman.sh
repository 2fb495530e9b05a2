#!/usr/bin/env bash
# podman with the project's own image storage (.local/image, so nothing touches the host's)
# and the settings a sandboxed CI machine needs; every image command of the project goes
# through it (hack/build-image.sh, the image test).
#
# Why each setting:
# - vfs storage: needs no overlay support from the kernel.
# - runc with cgroupfs: crun (podman's default) refuses a host whose cgroups are mounted in
#   hybrid v1/v2 mode, and systemd may not be running.
# - no default ulimits: podman raises RLIMIT_NPROC and RLIMIT_NOFILE for every container by
#   default, which a process without CAP_SYS_RESOURCE (a CI sandbox) is not allowed to do;
#   containers keep the caller's limits instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/hack/install-image-tools.sh" >&2
state="$root/.local/image"
mkdir -p "$state"
export CONTAINERS_STORAGE_CONF="$state/storage.conf" CONTAINERS_CONF="$state/containers.conf"
cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "vfs"
graphroot = "$state/storage"
runroot = "$state/run"
CONF
cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
exec podman "$@"
