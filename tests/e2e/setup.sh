#!/usr/bin/env bash
# Installs what tests/e2e needs on a fresh Debian machine of this project's kind (Node 20+ with
# npm, Python 3.11+ with venv). Idempotent, and quick when everything is already there:
#   - npm ci (Claude Code, Codex, oidc-provider pinned by package-lock.json) unless node_modules
#     already matches the lockfile and the CLIs run;
#   - .venv with requirements.txt (SDKs, pytest, scim2-cli + scim2-tester) unless the venv
#     already holds exactly those pins;
#   - Debian packages when their command is missing: nodejs npm python3-venv, and for the overlay
#     tests iproute2, wireguard-tools, wireguard-go (apt, --no-install-recommends).
# Usage: tests/e2e/setup.sh        (from anywhere)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
here=$PWD

log() { printf '[e2e setup] %s\n' "$*" >&2; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ -n "${2:-}" ] && command -v apt-get >/dev/null 2>&1; then
      log "installing $2 (apt)"
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2
      else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2
      fi
    fi
    command -v "$1" >/dev/null 2>&1 || { log "missing $1"; exit 1; }
  fi
}

need node "nodejs npm"
need npm "npm"
need python3 "python3 python3-venv"
# Overlay tests (lib/netns.py): network namespaces, veth pairs, stock userspace WireGuard peers.
# No kernel WireGuard module here: wireguard-go makes a TUN device. --no-install-recommends (in
# `need`) matters: wireguard-tools recommends a kernel image.
need ip "iproute2"
need ss "iproute2"
need setpriv "util-linux"
need wg "wireguard-tools"
need wireguard-go "wireguard-go"

# --- node side -------------------------------------------------------------------------------
stamp=node_modules/.e2e-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
cli_ok() {
  node_modules/.bin/claude --version >/dev/null 2>&1 && node_modules/.bin/codex --version >/dev/null 2>&1
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && cli_ok; then
  log "node_modules up to date"
else
  log "npm ci (Claude Code + Codex are large: ~800 MB)"
  npm ci --no-audit --no-fund --loglevel=error
  # Claude Code's postinstall links its native binary into bin/claude.exe. An npm that blocks
  # dependency install scripts leaves a stub there: run it ourselves.
  if ! node_modules/.bin/claude --version >/dev/null 2>&1; then
    log "running @anthropic-ai/claude-code's install.cjs"
    (cd node_modules/@anthropic-ai/claude-code && node install.cjs)
  fi
  cli_ok || { log "claude/codex do not run after npm ci"; exit 1; }
  echo "$want" > "$stamp"
fi
log "$(node_modules/.bin/claude --version) / $(node_modules/.bin/codex --version)"

# --- python side -----------------------------------------------------------------------------
pystamp=.venv/.e2e-requirements.sha256
pywant=$(cat requirements.txt <(python3 --version 2>&1) | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -x .venv/bin/scim2 ] && [ -f "$pystamp" ] && [ "$(cat "$pystamp")" = "$pywant" ]; then
  log "python venv up to date"
else
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  log "pip install -r requirements.txt"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # scim2-cli's `scim2` runs scim2-tester against the SCIM server (test_scim_conformance.py).
  .venv/bin/scim2 --help >/dev/null || { log "scim2 (scim2-cli) does not run after pip install"; exit 1; }
  echo "$pywant" > "$pystamp"
fi

log "ready: $here (run: tests/e2e/.venv/bin/python -m pytest tests/e2e)"
