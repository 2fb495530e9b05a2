#!/usr/bin/env bash
# Hand-run: the release controller's resident memory with N EbsVolumes cached and reconciled.
#
#   hack/measure-rss.sh [N]        (default 2000; needs `cargo build --release -p ec2-reconciler`)
#
# Uses the dev test bed in .local (started when absent: `testbed up --state-dir .local`).
# N volumes are made in the emulator first, then N EbsVolumes adopt them ObserveOnly, so
# every object is cached, observed through the batched reads and has a full status, without
# waiting N creates at the client-side rate floor. Prints VmRSS (and VmHWM) empty, once every
# object is Ready, and after idling; times are not the point. Not part of CI.
set -euo pipefail
N=${N:-${1:-2000}}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=$ROOT/.local
BIN=${BIN:-$ROOT/target/release/ec2-reconciler}
cd "$ROOT"

# The test bed's binary as `make build` makes it (see TESTBED in the Makefile).
cargo build --workspace --all-targets
TESTBED=${CARGO_TARGET_DIR:-$ROOT/target}/debug/testbed
bed=$("$TESTBED" status --state-dir "$STATE" 2>/dev/null || true)
if ! [ -f "$STATE/kubeconfig" ] || ! grep -q ' running' <<<"$bed"; then
  "$TESTBED" up --state-dir "$STATE" >/dev/null
fi
export KUBECONFIG=$STATE/kubeconfig
set -a; . "$STATE/aws.env"; set +a
export AWS_REGION=us-east-1

NS=mem-$(date +%s)
kubectl create namespace "$NS" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$STATE/measure-rss-$NS.log
RUST_LOG=warn "$BIN" run --namespace "$NS" --health-addr "127.0.0.1:$PORT" --resync-seconds 60 >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT

rss() { awk '/^(VmRSS|VmHWM)/ {printf "%s %d MiB  ", $1, $2/1024}' "/proc/$PID/status"; echo; }
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.5; done
sleep 2
echo "empty:      $(rss)"

# N volumes in the emulator (one Python process, ~150 creates/s), as a manifest of adopters.
"$("$ROOT/hack/emulator-venv.sh")" - "$N" "$NS" >"$STATE/measure-$NS.yaml" <<'EOF'
import os, sys, boto3
n, ns = int(sys.argv[1]), sys.argv[2]
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
for i in range(n):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, VolumeType="gp3")["VolumeId"]
    print(f"""---
apiVersion: ec2.reconciler.dev/v1alpha1
kind: EbsVolume
metadata: {{name: v{i}, namespace: {ns}}}
spec: {{volumeId: {vid}, managementPolicy: ObserveOnly}}""")
EOF
kubectl apply -f "$STATE/measure-$NS.yaml" >/dev/null
ready() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^ec2_reconciler_objects\{.*kind="EbsVolume".*ready="True"/ {print $2}'; }
until [ "$(ready)" = "$N" ]; do sleep 5; done
echo "all $N Ready: $(rss)"
sleep 75
echo "idle (>1 resync): $(rss)"
kubectl delete namespace "$NS" --wait=false >/dev/null
