#!/bin/sh
# Runs one Stratum process: services/$SERVICE/src/main.ts through tsx. Arguments are passed to it
# (agent-sim takes its flags this way). `exec` makes node PID 1, so SIGTERM reaches it directly.
set -eu
cd /app
case "${SERVICE:-}" in
  "" | *[!a-z0-9-]*) echo "stratum: SERVICE must be a service directory name, got '${SERVICE:-}'" >&2; exit 64 ;;
esac
main="services/$SERVICE/src/main.ts"
if [ ! -f "$main" ]; then
  echo "stratum: no $main; this image has: $(ls services | tr '\n' ' ')" >&2
  exit 64
fi
exec node --import tsx "$main" "$@"
