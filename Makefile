# ai-load-balancer: build, run and test. `make run` and `make test` install what they need.
SHELL := /bin/bash
CARGO ?= cargo
TARGET := wasm32-wasip1
DIST := dist
VENV := .venv
PY := $(VENV)/bin/python
RELEASE_DIR := target/$(TARGET)/release
WASM_NAME := ai_load_balancer.wasm

# CI builds once from a clean clone: incremental caches would only take disk.
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif

.PHONY: setup build run test unit artifacts e2e load-run lint fmt deploy image oci clean bench \
	bench-build bench-host-calls

setup:
	@bash scripts/setup.sh

# Two modules: the default build loads in upstream Envoy and Istio; feature `higress` adds
# Higress's Redis host calls, which upstream Envoy refuses to load. Each goes through wasm-opt
# (binaryen, installed by scripts/setup.sh): what every test, e2e run and benchmark loads. The
# features are the ones rustc emits for wasm32-wasip1 (Debian's binaryen 108 does not read
# them from the module).
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
build:
	@rustup target add $(TARGET) >/dev/null 2>&1 || true
	@command -v wasm-opt >/dev/null || bash scripts/setup.sh
	$(CARGO) build --release --lib --target $(TARGET) --target-dir target/envoy
	$(CARGO) build --release --lib --target $(TARGET) --target-dir target/higress --features higress
	@mkdir -p $(DIST)
	wasm-opt -Oz $(WASM_OPT_FEATURES) target/envoy/$(TARGET)/release/$(WASM_NAME) -o $(DIST)/ai-load-balancer-envoy.wasm
	wasm-opt -Oz $(WASM_OPT_FEATURES) target/higress/$(TARGET)/release/$(WASM_NAME) -o $(DIST)/ai-load-balancer.wasm
	@ls -l $(DIST)/*.wasm

run: setup build
	$(PY) scripts/gateway.py $(if $(PORT),--port $(PORT))

test: setup build lint unit artifacts e2e

unit:
	$(CARGO) test --all-targets

# The shipped Kubernetes manifests against Istio's and Higress's CRDs, and `make oci`'s layouts
# (tests/artifacts/; the CRD checks skip, saying why, without ../shared/schemas/).
artifacts:
	$(PY) -m pytest -q tests/artifacts

e2e:
	$(PY) -m pytest -q tests/e2e

# A bounded load run (~15 s, not part of `make test`): client threads through the whole stack
# while one provider is killed and restarted; prints the errors clients saw and how long the
# provider took to serve again (figures also in target/load-run.json). Options: LOAD_RUN_ARGS,
# e.g. LOAD_RUN_ARGS="--clients 8 --seconds 20".
load-run: setup build
	$(PY) scripts/load_run.py $(LOAD_RUN_ARGS)

# Benchmarks (not part of `make test`): writes bench/results.md and bench/chart.png (~22 min on
# 2 cores; a quiet machine is the point). BENCH_ARGS passes options to bench/run.py, e.g.
# BENCH_ARGS="--rounds 2 --seconds 2 --skip-rewrite --skip-litellm" for a smoke run.
bench: setup build bench-build bench-host-calls
	@bash bench/setup.sh
	$(PY) bench/filters/check.py
	$(PY) bench/run.py $(BENCH_ARGS)

# Host calls, ABI bytes and wasm instructions per request, per mode, counted by the test host
# (no timing): the budget test, its table written for bench/results.md.
bench-host-calls: build
	@mkdir -p target/bench
	HOST_CALL_TABLE=$(CURDIR)/target/bench/host_calls.md $(CARGO) test -q --test host_call_budget

# The comparison filters the benchmark measures the filter against (bench/filters), and the
# benchmark's own checks: its filters' configuration, and the Rust and Python body generators
# producing the same bytes (bench/rewrite). `make bench` then checks every variant in real Envoy
# (bench/filters/check.py, ~20 s) before measuring.
bench-build:
	$(CARGO) build --release --target $(TARGET) --manifest-path bench/filters/Cargo.toml --target-dir target/bench
	$(CARGO) test -q --manifest-path bench/filters/Cargo.toml --target-dir target/bench
	$(CARGO) test -q --manifest-path bench/rewrite/Cargo.toml --target-dir target/bench

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --target $(TARGET) -- -D warnings
	$(CARGO) clippy --lib --target $(TARGET) --features higress -- -D warnings
	$(CARGO) fmt --check --manifest-path bench/filters/Cargo.toml
	$(CARGO) fmt --check --manifest-path bench/rewrite/Cargo.toml
	$(CARGO) clippy --target $(TARGET) --manifest-path bench/filters/Cargo.toml --target-dir target/bench -- -D warnings

fmt:
	$(CARGO) fmt

# Copies the Higress build into a running Higress container (see higress/README.md).
deploy: build
	bash higress/deploy.sh $(DIST)/ai-load-balancer.wasm

# OCI images of both modules for a WasmPlugin's `url: oci://…` (higress/Dockerfile: the module
# as plugin.wasm, FROM scratch), then `docker push $(IMAGE) $(ENVOY_IMAGE)` yourself, e.g.
# make image REGISTRY=registry.example.com/ai-gateway/ VERSION=0.1.0
REGISTRY ?=
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IMAGE ?= $(REGISTRY)ai-provider-balancer:$(VERSION)
ENVOY_IMAGE ?= $(REGISTRY)ai-load-balancer-envoy:$(VERSION)
image: build
	docker build -f higress/Dockerfile --build-arg WASM=ai-load-balancer.wasm -t $(IMAGE) $(DIST)
	docker build -f higress/Dockerfile --build-arg WASM=ai-load-balancer-envoy.wasm -t $(ENVOY_IMAGE) $(DIST)

# Both modules as OCI image layouts in Higress's plugin format (spec.yaml, README, plugin.tar.gz
# holding plugin.wasm; scripts/oci_layout.py), without a Docker daemon, deterministic. Push
# them with any OCI client, e.g.
#   oras cp --from-oci-layout dist/oci/ai-provider-balancer:$(VERSION) $(IMAGE)
#   skopeo copy oci:dist/oci/ai-load-balancer-envoy:$(VERSION) docker://$(ENVOY_IMAGE)
OCI_DIR := $(DIST)/oci
oci: build
	$(PY) scripts/oci_layout.py --wasm $(DIST)/ai-load-balancer.wasm --spec higress/spec.yaml \
		--readme higress/README.md --tag $(VERSION) --out $(OCI_DIR)/ai-provider-balancer
	$(PY) scripts/oci_layout.py --wasm $(DIST)/ai-load-balancer-envoy.wasm --spec higress/spec.yaml \
		--readme envoy/istio/README.md --tag $(VERSION) --out $(OCI_DIR)/ai-load-balancer-envoy

clean:
	rm -rf $(DIST) target
