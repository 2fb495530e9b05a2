#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v3, cmd/helm) at the version pinned in
# hack/versions.env, into a cache outside git keyed by that version, and prints the path of
# the binary on stdout (nothing else goes to stdout). A second run with the same version does
# nothing but print the path.
#
# helm's go.mod has no replace directives, so `go install module/cmd@version` builds it as
# released; the ldflags are the ones helm's own Makefile sets, so `helm version` reports the
# pinned version and `helm template`/`helm lint` assume the Kubernetes minor helm was built with.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${EC2R_CACHE_DIR:-$HOME/.cache/ec2-reconciler}"
out="$cache_root/bin/helm-$HELM_VERSION"
if [[ -x "$out/helm" ]]; then
  echo "$out/helm"
  exit 0
fi
log() { echo "helm-binary: $*" >&2; }
command -v go >/dev/null || { log "Go is required to build helm"; exit 1; }

work="$cache_root/build/helm-$HELM_VERSION"
rm -rf "$work" "$out.tmp"
mkdir -p "$work" "$out.tmp"
# Go's module and build caches serve only this build: kept beside it, removed afterwards.
export GOMODCACHE="$work/gomodcache" GOCACHE="$work/gocache"
cleanup() {
  go clean -modcache 2>/dev/null || true # the module cache is read-only: rm alone cannot remove it
  rm -rf "$work" "$out.tmp"
}
trap cleanup EXIT

log "downloading helm.sh/helm/v3 $HELM_VERSION"
helm_dir="$(cd "$work" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f "$helm_dir/go.mod" ]] || { log "could not find the downloaded module"; exit 1; }
# What helm's Makefile derives from its client-go requirement v0.MINOR.x: Kubernetes 1.MINOR.
client_go="$(awk '$1 == "k8s.io/client-go" {print $2}' "$helm_dir/go.mod")"
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
[[ "$k8s_minor" =~ ^[0-9]+$ ]] || { log "cannot read k8s.io/client-go's version from helm's go.mod"; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/internal/version.metadata= \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
log "building helm $HELM_VERSION (Kubernetes 1.$k8s_minor libraries)"
(cd "$work" && GOBIN="$out.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")

rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/helm"
