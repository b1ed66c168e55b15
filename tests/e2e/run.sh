#!/usr/bin/env bash
# The whole end-to-end suite, from a fresh clone: installs what it needs (setup.sh), builds the
# `agentnet` and `mock-llm` binaries, runs every test under tests/e2e (the harness's own checks
# and the gateway tests) with a per-test timeout. Exits non-zero on any failure, and when no
# test ran at all.
#
#   tests/e2e/run.sh                      # everything
#   tests/e2e/run.sh -k gateway -x        # extra arguments go to pytest
#
# Environment: CARGO_TARGET_DIR (respected; default <repo>/target), E2E_TEST_TIMEOUT (seconds per
# test, default 180), E2E_LOG_DIR (process logs, pytest.log, junit.xml; default a fresh temp dir,
# printed at the end),
# AGENTNET_BIN / MOCK_LLM_BIN (use these binaries instead of building).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { printf '[e2e run] %s\n' "$*" >&2; }
started=$(date +%s)

# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

"$here/setup.sh"

if [ -z "${AGENTNET_BIN:-}" ] || [ -z "${MOCK_LLM_BIN:-}" ]; then
  command -v cargo >/dev/null 2>&1 || { log "cargo not found (install Rust, or set AGENTNET_BIN and MOCK_LLM_BIN)"; exit 1; }
  log "cargo build -p cli -p testkit --bins"
  (cd "$repo" && cargo build --quiet -p cli -p testkit --bins)
  # Where cargo put them: CARGO_TARGET_DIR (relative to the repo if relative), a target-dir from
  # .cargo/config.toml, or <repo>/target: cargo metadata knows.
  target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  export AGENTNET_BIN="${AGENTNET_BIN:-$target/debug/agentnet}"
  export MOCK_LLM_BIN="${MOCK_LLM_BIN:-$target/debug/mock-llm}"
fi
for bin in "$AGENTNET_BIN" "$MOCK_LLM_BIN"; do
  [ -x "$bin" ] || { log "missing binary $bin"; exit 1; }
done
log "agentnet: $AGENTNET_BIN"
log "mock-llm: $MOCK_LLM_BIN"

export E2E_LOG_DIR="${E2E_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/agentnet-e2e-logs-XXXXXX")}"
log "process logs: $E2E_LOG_DIR"

cd "$here"
set +e
.venv/bin/python -m pytest --timeout="${E2E_TEST_TIMEOUT:-180}" -p no:cacheprovider \
  --junitxml="$E2E_LOG_DIR/junit.xml" "$@" 2>&1 | tee "$E2E_LOG_DIR/pytest.log"
rc=${PIPESTATUS[0]}
set -e

log "pytest exit $rc after $(( $(date +%s) - started )) s (logs: $E2E_LOG_DIR)"
case $rc in
  0) exit 0 ;;
  5) log "no tests were collected: that is a failure"; exit 1 ;;
  *) exit "$rc" ;;
esac
