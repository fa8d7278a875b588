# Tributary's entry points. Every target installs what it needs first (idempotent; the cache is
# ${TRIBUTARY_CACHE:-~/.cache/tributary}), so a fresh clone needs nothing but this file.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all install build test test-long demo bench bench-group bench-distributed bench-operator bench-postgres lint fmt generate images clean-cache

all: build

## install: the real components the tests and the demo run (Kafka, Kubernetes, etcd, helm, PostgreSQL)
install:
	tests/infra/install.sh

## build: every crate, binary and test
build:
	$(CARGO) build --workspace --all-targets --locked

## test: install what is missing, start one devstack, run every test against it
test: install
	tests/run.sh

## test-long: everything in `make test`, then the long tiers (long fuzz runs, 15 min of schemathesis, the chaos soak: five rounds of every
## fault over at least 5M records, the 1M-rows-per-mode PostgreSQL round trip on release builds)
test-long: test
	TRIBUTARY_CHAOS_ROUNDS=$${TRIBUTARY_CHAOS_ROUNDS:-5} TRIBUTARY_CHAOS_RECORDS=$${TRIBUTARY_CHAOS_RECORDS:-5000000} \
	  $(CARGO) test --locked -p tributary-tests --test chaos -- --nocapture --test-threads=1 no_record_is_lost
	TRIBUTARY_FUZZ_SECONDS=$${TRIBUTARY_FUZZ_SECONDS:-600} $(CARGO) test --locked -p tributary-tests --test fuzz -- --nocapture
	TRIBUTARY_SCHEMATHESIS_SECONDS=$${TRIBUTARY_SCHEMATHESIS_SECONDS:-900} $(CARGO) test --locked -p tributary-tests --test schemathesis -- --nocapture
	$(CARGO) build --release --locked -p tributary-worker --bin tributary-worker
	TRIBUTARY_PG_ROUNDTRIP_ROWS=$${TRIBUTARY_PG_ROUNDTRIP_ROWS:-1000000} TRIBUTARY_WORKER_BIN=$(CURDIR)/target/release/tributary-worker \
	  $(CARGO) test --locked -p tributary-tests --test postgres_source -- every_type_goes_table_to_topic --nocapture

## demo: devstack, helm install of the chart, the datagen example pipeline, its resources and record
## counts live; Ctrl-C tears down (DEMO_DURATION=<seconds> for a timed run that fails without records)
demo: install
	$(CARGO) build --locked --workspace --bins
	target/debug/demo

## stack: the local stack in the foreground (Kafka, Kubernetes with the pod runner, PostgreSQL, Java Kafka
## Connect) to explore by hand; prints how to reach each component; Ctrl-C stops it
stack: install
	$(CARGO) build --locked -p tributary-tests --bin devstack
	$(CARGO) build --locked -p tributary-worker -p tributary-operator
	target/debug/devstack up --java-connect

## bench: tributary-worker standalone vs Java connect-standalone on one broker, release builds, median of 3 runs
## (about 25 minutes plus the release build; `make bench BENCH_ARGS=--quick` for a 200k-record smoke run); prints tables
BENCH_ARGS ?= --repeat 3
bench: install
	$(CARGO) build --release --locked -p tributary-worker -p tributary-tests --bin tributary-worker --bin devstack --bin standalone-bench
	TRIBUTARY_WORKER_BIN=$(CURDIR)/target/release/tributary-worker TRIBUTARY_DEVSTACK_BIN=$(CURDIR)/target/release/devstack \
	  target/release/standalone-bench $(BENCH_ARGS)

## bench-group: how fast a Connect group forms and settles after a kill -9, Tributary members vs Java workers
bench-group: install
	$(CARGO) build --release --locked -p tributary-tests --bin devstack --bin group-bench
	TRIBUTARY_DEVSTACK_BIN=$(CURDIR)/target/release/devstack target/release/group-bench

## bench-distributed: 3 Tributary distributed workers vs 3 Java workers (failover after kill -9, rolling
## restart), then 1000 datagen connectors on 10 Tributary workers and an 11th joining (`BENCH_ARGS=--workers 4
## --connectors 100` for a smaller run); prints tables
bench-distributed: install
	$(CARGO) build --release --locked -p tributary-worker -p tributary-tests --bin tributary-worker --bin devstack --bin distributed-bench
	TRIBUTARY_DEVSTACK_BIN=$(CURDIR)/target/release/devstack TRIBUTARY_WORKER_BIN=$(CURDIR)/target/release/tributary-worker \
	  target/release/distributed-bench $(BENCH_ARGS)

## bench-operator: kubectl apply → Ready for 1, 10 and 100 datagen Connectors (p50/p99), and the operator's
## peak RSS with 1000 Connectors (`BENCH_ARGS=--many 200` for a smaller run); release builds (the operator's
## shipped `operator` profile); prints tables
bench-operator: BENCH_ARGS :=
bench-operator: install
	$(CARGO) build --release --locked -p tributary-worker -p tributary-tests --bin tributary-worker --bin devstack --bin connector-bench
	$(CARGO) build --profile operator --locked -p tributary-operator --bin tributary-operator
	TRIBUTARY_DEVSTACK_BIN=$(CURDIR)/target/release/devstack TRIBUTARY_WORKER_BIN=$(CURDIR)/target/release/tributary-worker \
	  TRIBUTARY_OPERATOR_BIN=$(CURDIR)/target/operator/tributary-operator target/release/connector-bench $(BENCH_ARGS)

## bench-postgres: the PostgreSQL sink's rows/s (insert, upsert; batches of 500 and 5,000) against COPY and the
## same UNNEST upsert run directly and Debezium's JDBC sink (Java), and the source's against a plain SELECT → JSON → Kafka program
## (`BENCH_ARGS=--rows 1000000` for the issue's size, `--only sink|source`); release builds; prints tables
bench-postgres: BENCH_ARGS :=
bench-postgres: install
	tests/infra/install.sh debezium-jdbc
	$(CARGO) build --release --locked -p tributary-worker -p tributary-tests --bin tributary-worker --bin devstack --bin postgres-bench
	TRIBUTARY_DEVSTACK_BIN=$(CURDIR)/target/release/devstack TRIBUTARY_WORKER_BIN=$(CURDIR)/target/release/tributary-worker \
	  target/release/postgres-bench $(BENCH_ARGS)

## images: build the operator and worker images with whatever engine is installed (docker, podman,
## nerdctl or buildah; ENGINE=… to choose, TAG=… for the tag); not run in CI, where no engine runs
IMAGE_PREFIX ?= ghcr.io/tributary-dev
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
ENGINE ?= $(firstword $(foreach e,docker podman nerdctl buildah,$(if $(shell command -v $(e)),$(e))))
images:
	@test -n "$(ENGINE)" || { echo "no container engine found (docker, podman, nerdctl, buildah); set ENGINE=" >&2; exit 1; }
	$(ENGINE) build -f operator/Dockerfile --build-arg VERSION=$(TAG) -t $(IMAGE_PREFIX)/tributary-operator:$(TAG) .
	$(ENGINE) build -f worker/Dockerfile --build-arg VERSION=$(TAG) -t $(IMAGE_PREFIX)/tributary-worker:$(TAG) .

## lint: formatting and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## generate: regenerate generated files (the JsonConverter fixtures, the CRDs, the chart's copies, manifests/install, docs/metrics.md)
generate:
	tests/fixtures/json-converter/generate.sh
	$(CARGO) run -q -p tributary-operator -- crd > crds/tributary.dev.yaml
	{ echo '{{- if .Values.crds.install }}'; $(CARGO) run -q -p tributary-operator -- crd --only chart-crds; echo '{{- end }}'; } > charts/tributary/templates/crds.yaml
	{ echo '{{- if .Values.admissionPolicies }}'; $(CARGO) run -q -p tributary-operator -- crd --only policies; echo '{{- end }}'; } > charts/tributary/templates/admission-policies.yaml
	$${TRIBUTARY_CACHE:-$$HOME/.cache/tributary}/helm-docs/$$(sed -n 's/^HELM_DOCS_VERSION=//p' tests/infra/versions.env)/helm-docs \
	  --chart-search-root charts/tributary --sort-values-order file --log-level warning
	tests/infra/render-install.sh > manifests/install/tributary.yaml
	TRIBUTARY_REGENERATE=1 $(CARGO) test -q -p tributary-worker --lib metrics::docs
	TRIBUTARY_REGENERATE=1 $(CARGO) test -q -p tributary-operator --lib metrics::tests::docs_metrics_md
