#!/usr/bin/env bash
# Builds tests/health (health-helper: kstatus and Argo CD's Lua engine on objects given as
# JSON) from its Go modules, pinned by tests/health/go.mod and go.sum, into a cache outside
# git keyed by a hash of its sources, and prints the binary's path. A second run with the
# same sources does nothing but print the path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../tests/health"

cache_root="${EC2R_CACHE_DIR:-$HOME/.cache/ec2-reconciler}"
# The key covers everything that decides the binary: the module files and the Go sources.
key="$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
out="$cache_root/bin/health-helper-$key"
if [[ -x "$out/health-helper" ]]; then
  echo "$out/health-helper"
  exit 0
fi
command -v go >/dev/null || { echo "health-helper: Go is required to build tests/health" >&2; exit 1; }

work="$cache_root/build/health-helper-$key"
mkdir -p "$work" "$out.tmp"
# Own module and build caches, removed once the binary is in place (as for the test bed's
# binaries); -mod=readonly: go.sum as committed, nothing resolved anew.
export GOMODCACHE="$work/gomodcache" GOCACHE="$work/gocache" GOFLAGS=-mod=readonly
echo "health-helper: building tests/health (a cold build takes a minute or two)" >&2
(cd "$src" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out.tmp/health-helper" .)
rm -rf "$out"
mv "$out.tmp" "$out"
go clean -modcache # the module cache is read-only: rm alone cannot remove it
rm -rf "$work"
echo "$out/health-helper"
