#!/usr/bin/env bash
# Runs every test against one devstack: builds, starts `devstack up` in the background, points
# the tests at it through TRIBUTARY_DEVSTACK_ENV, and stops it however the tests end. The stack's
# logs are kept when a test fails. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

start=$SECONDS
log "building the workspace"
cargo build --workspace --all-targets --locked
log "built in $((SECONDS - start)) s"

state=target/devstack
mkdir -p "$state"
env_file=$PWD/$state/test.env
rm -f "$env_file"
log "starting the devstack (log: $state/devstack.log)"
target/debug/devstack up --env-file "$env_file" --keep --exit-with-parent >"$state/devstack.log" 2>&1 &
devstack_pid=$!

stack_dir=""
stop_devstack() {
  if kill -0 "$devstack_pid" 2>/dev/null; then
    kill -TERM "$devstack_pid" 2>/dev/null || true
    wait "$devstack_pid" 2>/dev/null || true
  fi
}
trap stop_devstack EXIT

deadline=$((SECONDS + 600))
until [[ -f "$env_file" ]]; do
  if ! kill -0 "$devstack_pid" 2>/dev/null; then
    log "the devstack failed to start:"
    tail -40 "$state/devstack.log" >&2
    exit 1
  fi
  if ((SECONDS > deadline)); then
    log "the devstack was not ready within 600 s; see $state/devstack.log"
    exit 1
  fi
  sleep 0.5
done
stack_dir=$(sed -nE "s/^TRIBUTARY_DEVSTACK_DIR='(.*)'$/\1/p" "$env_file")
log "devstack ready ($(grep -E '^ready in' "$state/devstack.log" || true))"

test_start=$SECONDS
status=0
TRIBUTARY_DEVSTACK_ENV=$env_file RUST_BACKTRACE=${RUST_BACKTRACE:-0} \
  cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$state/cargo-test.log" || status=$?
log "tests finished in $((SECONDS - test_start)) s (exit $status); total $((SECONDS - start)) s"

stop_devstack
trap - EXIT
if [[ $status -eq 0 ]]; then
  [[ -n "$stack_dir" ]] && rm -rf "$stack_dir"
else
  log "devstack logs kept in ${stack_dir:-$state}/logs"
fi
# One closing line over every test binary, so the total is plain to see (and to CI).
counts=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
  END { printf "%d passed, %d failed", p, f }' "$state/cargo-test.log")
echo "tests: $counts"
exit $status
