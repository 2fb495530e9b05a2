#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from their Go modules at the versions pinned in
# hack/versions.env, into a cache outside git keyed by version, and prints the cache directory.
# A second run with the same versions does nothing but print the directory.
#
# Why a wrapper module: k8s.io/kubernetes requires its staging modules at v0.0.0 and maps
# them with replace directives that a consumer does not inherit (kubernetes/kubernetes#79384),
# and etcd's server module cannot be `go install`ed for the same reason (etcd-io/etcd#18501).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${EC2R_CACHE_DIR:-$HOME/.cache/ec2-reconciler}"
out="$cache_root/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
if [[ -x "$out/kube-apiserver" && -x "$out/kubectl" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { echo "testbed-binaries: Go is required to build kube-apiserver and etcd" >&2; exit 1; }

work="$cache_root/build/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$work/kube" "$work/etcd" "$out.tmp"
# Go's module and build caches serve only this build (about 3.5 GB): they are kept beside it
# and removed once the binaries are in place, so they do not hold the disk the Rust build
# needs next.
export GOMODCACHE="$work/gomodcache" GOCACHE="$work/gocache"
log() { echo "testbed-binaries: $*" >&2; }

# --- kube-apiserver and kubectl -----------------------------------------------------------
minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
patch="${KUBERNETES_VERSION##*.}"
staging_version="v0.$minor.$patch"
(
  cd "$work/kube"
  cat > go.mod <<MOD
module ec2reconciler.local/testbed/kube
go 1.24.0
require k8s.io/kubernetes $KUBERNETES_VERSION
MOD
  log "downloading k8s.io/kubernetes $KUBERNETES_VERSION"
  GOFLAGS=-mod=mod go mod download k8s.io/kubernetes
  kube_dir="$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  # Replace every staging module the release maps to ./staging with its published v0.Y.Z,
  # reading the list from the release's own go.mod.
  staging_modules="$(awk '/=> \.\/staging/ {print $1}' "$kube_dir/go.mod")"
  for m in $staging_modules; do
    go mod edit -replace "$m=$m@$staging_version"
  done
  log "resolving modules (staging at $staging_version)"
  GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  log "building kube-apiserver (a cold build takes several minutes)"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  log "building kubectl"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
)

# --- etcd ----------------------------------------------------------------------------------
(
  cd "$work/etcd"
  cat > go.mod <<MOD
module ec2reconciler.local/testbed/etcd
go 1.24.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  log "resolving etcd $ETCD_VERSION"
  GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@$ETCD_VERSION
  log "building etcd"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
)

rm -rf "$out"
mv "$out.tmp" "$out"
go clean -modcache # the module cache is read-only: rm alone cannot remove it
rm -rf "$work"
echo "$out"
