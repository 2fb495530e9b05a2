#!/usr/bin/env bash
# `make demo`: a local control plane and AWS emulator, the controller, the example
# manifests, and a live view of them converging. Ctrl-C stops everything it started.
set -euo pipefail
state_dir="${1:-.local}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cargo run -q -p e2e --bin testbed -- up --state-dir "$state_dir"
export KUBECONFIG="$repo/$state_dir/kubeconfig"
# shellcheck disable=SC1091
source "$state_dir/aws.env"
kubectl="$(hack/testbed-binaries.sh)/kubectl"

cleanup() {
  echo
  echo "demo: stopping the controller, the control plane and the emulator"
  [[ -n "${controller_pid:-}" ]] && kill "$controller_pid" 2>/dev/null || true
  cargo run -q -p e2e --bin testbed -- down --state-dir "$state_dir" || true
}
# Cleanup runs once, on exit; Ctrl-C or a TERM only ends the loop.
trap cleanup EXIT
trap 'exit 0' INT TERM

RUST_LOG="${RUST_LOG:-info}" target/debug/ec2-reconciler run --health-addr 127.0.0.1:0 \
  >"$state_dir/controller.log" 2>&1 &
controller_pid=$!
echo "demo: controller running (log: $state_dir/controller.log)"

"$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" apply -n demo -f examples/
echo "demo: watching the examples converge (Ctrl-C to stop)"
while true; do
  clear 2>/dev/null || true
  date
  "$kubectl" get -n demo ebsvolumes,amiimages,encryptedvolumemigrations 2>&1
  echo
  echo "AWS (emulator) volumes:"
  aws_summary="$(curl -fsS "$EC2EMU_URL/_emulator/calls" 2>/dev/null || true)"
  echo "  calls so far: ${aws_summary:-unavailable}"
  sleep 2
done
