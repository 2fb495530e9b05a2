# ec2-reconciler: every entry point a developer or CI needs.
# `make demo` shows it working on a laptop; `make test` runs every test from a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
STATE_DIR ?= .local

.PHONY: all build crds iam-policy lint test test-emulator test-rust testbed image env-up env-down demo bench clean

all: build

# `--all-targets`, like `make test`: building the binaries alone would select other features
# (no dev-dependencies) and compile every dependency a second time.
build:
	$(CARGO) build --workspace --all-targets

## Regenerate crds/ (and the chart's copies) from the Rust types.
crds:
	$(CARGO) run -q -p ec2-reconciler -- crdgen --out-dir crds --chart-dir charts/ec2-reconciler/templates/crds

## Regenerate deploy/iam-policy.json from the AWS actions the client calls.
iam-policy:
	$(CARGO) run -q -p ec2-reconciler -- iam-policy --out deploy/iam-policy.json

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Build (or reuse) kube-apiserver, etcd, kubectl, helm, the health helper (kstatus and Argo
## CD's Lua engine, for the GitOps health tests) and the emulator's Python environment, and
## install podman (from Debian's packages) for the image test.
testbed:
	hack/testbed-binaries.sh
	hack/helm-binary.sh >/dev/null
	hack/health-helper.sh >/dev/null
	hack/emulator-venv.sh >/dev/null
	hack/install-image-tools.sh

## The controller's container image (release build), as .local/image/ec2-reconciler.oci.tar.
image:
	hack/build-image.sh --tag ec2-reconciler:$$($(CARGO) pkgid -p ec2-reconciler | sed 's/.*[#@]//')

test-emulator: testbed
	cd tests/emulator && PYTHONPATH=. "$$(../../hack/emulator-venv.sh)" -m pytest -q tests

# `--all-targets` builds the binaries with the test feature set (tokio's test-util comes in as
# a dev-dependency), so `cargo test` reuses every dependency instead of compiling them twice.
test-rust: testbed
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --no-fail-fast

## Everything: lint, the emulator layer's own tests, unit and end-to-end tests.
test: lint test-emulator test-rust

# The test bed's own binary, as `build` makes it. Not `cargo run -p e2e`: selecting one package
# resolves other features than `--workspace --all-targets`, so it compiled most dependencies a
# second time (minutes on two cores, hidden by `-q`).
TESTBED = $${CARGO_TARGET_DIR:-target}/debug/testbed

## Start a control plane and the AWS emulator, and leave them running.
env-up: testbed build
	$(TESTBED) up --state-dir $(STATE_DIR)

env-down: build
	$(TESTBED) down --state-dir $(STATE_DIR)

## The first thing to run: control plane, emulator, controller, examples, live view.
demo: testbed build
	hack/demo.sh $(STATE_DIR)

## The benchmark: N gp3 EbsVolumes (default 1000; `N=10000 make bench`), then AMIS AmiImages
## (default 100) and MIGRATIONS EncryptedVolumeMigrations (default 20; 0 skips a kind), each
## kind on a test bed of its own, with the release build; one table printed and written as
## JSON to .local/bench/. RATE_SCALE raises the controller's client-side AWS limits
## (--aws-rate-scale): such a run is reported apart.
N ?= 1000
AMIS ?= 100
MIGRATIONS ?= 20
RATE_SCALE ?= 1
RESYNC_SECONDS ?= 60
bench:
	$(CARGO) build --release -p ec2-reconciler
	$(CARGO) build --workspace --all-targets
	"$${CARGO_TARGET_DIR:-target}/debug/bench" --n $(N) --amis $(AMIS) \
		--migrations $(MIGRATIONS) --rate-scale $(RATE_SCALE) \
		--resync-seconds $(RESYNC_SECONDS) \
		--controller "$${CARGO_TARGET_DIR:-target}/release/ec2-reconciler"

clean: env-down
	$(CARGO) clean
