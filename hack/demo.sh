#!/usr/bin/env bash
# `make demo`: a local control plane and AWS emulator, the controller, the example
# manifests, and a live view of them converging. Ctrl-C stops everything it started.
set -euo pipefail
state_dir="${1:-.local}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# The account the examples share an AMI with, on the demo controller's sharing allowlist.
share_with=111122223333

# The test bed and the controller as `make demo` built them (`cargo build --workspace
# --all-targets`), in cargo's target directory: CARGO_TARGET_DIR when it is set.
bin_dir="${CARGO_TARGET_DIR:-target}/debug"
testbed="$bin_dir/testbed"
controller="$bin_dir/ec2-reconciler"
for binary in "$testbed" "$controller"; do
  [[ -x "$binary" ]] || { echo "demo: $binary is missing: run \`make demo\` (it builds it first)" >&2; exit 1; }
done
"$testbed" up --state-dir "$state_dir"
export KUBECONFIG="$repo/$state_dir/kubeconfig"
# shellcheck disable=SC1091
source "$state_dir/aws.env"
kubectl="$(hack/testbed-binaries.sh)/kubectl"
python="$(hack/emulator-venv.sh)"

cleanup() {
  echo
  echo "demo: stopping the controller, the control plane and the emulator"
  [[ -n "${controller_pid:-}" ]] && kill "$controller_pid" 2>/dev/null || true
  "$testbed" down --state-dir "$state_dir" || true
}
# Cleanup runs once, on exit; Ctrl-C or a TERM only ends the loop.
trap cleanup EXIT
trap 'exit 0' INT TERM

# What the AmiImage examples start from: an instance and a snapshot granted to `demo`, and
# public Amazon Linux images in eu-west-1 (see hack/demo-seed.py).
seeded="$("$python" hack/demo-seed.py --namespace demo)"
seeded_value() { sed -n "s/^$1=//p" <<<"$seeded"; }
instance_id="$(seeded_value INSTANCE_ID)"
snapshot_id="$(seeded_value SNAPSHOT_ID)"
echo "demo: seeded instance $instance_id, snapshot $snapshot_id, base image $(seeded_value SOURCE_IMAGE_ID) (eu-west-1)"
# From here on the emulator counts only the controller's calls.
curl -fsS -X DELETE "$EC2EMU_URL/_emulator/calls" >/dev/null

RUST_LOG="${RUST_LOG:-info}" "$controller" run --health-addr 127.0.0.1:0 \
  --share-allow-accounts "$share_with" \
  >"$state_dir/controller.log" 2>&1 &
controller_pid=$!
echo "demo: controller running (log: $state_dir/controller.log)"

"$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
# The examples carry placeholder ids: the seeded ones go in on the way.
for example in examples/*.yaml; do
  sed -e "s/i-0123456789abcdef0/$instance_id/g" -e "s/snap-0123456789abcdef0/$snapshot_id/g" "$example" |
    "$kubectl" apply -n demo -f -
done
echo "demo: watching the examples converge (Ctrl-C to stop)"
while true; do
  # A controller that exited leaves nothing to watch: say why instead of showing a still view.
  if ! kill -0 "$controller_pid" 2>/dev/null; then
    wait "$controller_pid" && status=0 || status=$?
    echo "demo: the controller exited (status $status); the end of $state_dir/controller.log:" >&2
    tail -n 20 "$state_dir/controller.log" >&2
    exit 1
  fi
  clear 2>/dev/null || true
  date
  "$kubectl" get -n demo ebsvolumes,amiimages,encryptedvolumemigrations 2>&1
  echo
  # Where each AMI came from (a selector's pinned match), whom it is shared with, and why
  # it is not synced, if it is not.
  "$kubectl" get -n demo amiimages -o custom-columns='AMI:.metadata.name,SOURCE IMAGE:.status.sourceImageId,NEWER SOURCE:.status.newerSourceImageId,SHARED WITH:.status.launchPermissions.accountIds,SYNCED:.status.conditions[?(@.type=="Synced")].reason' 2>&1
  echo
  # The controller's calls: how many, how many only read (Describe*, Get*), and the others
  # by action (CreateImage, RegisterImage, CopyImage, ModifyImageAttribute, ...).
  calls="$(curl -fsS "$EC2EMU_URL/_emulator/calls" 2>/dev/null || true)"
  summary="$("$python" -c '
import json, sys
calls = json.load(sys.stdin)["calls"]
reads = sum(n for a, n in calls.items() if a.startswith(("Describe", "Get")))
changes = [f"{a} {n}" for a, n in sorted(calls.items()) if not a.startswith(("Describe", "Get"))]
print(f"{sum(calls.values())} ({reads} reads); changes:", ", ".join(changes) or "none")
' <<<"$calls" 2>/dev/null || true)"
  echo "AWS (emulator) calls so far: ${summary:-unavailable}"
  sleep 2
done
