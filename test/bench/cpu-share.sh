#!/usr/bin/env bash
# Where bench:vm's CPU goes: runs `pnpm bench:vm` (arguments passed on, e.g. --vms 3000) and
# prints the CPU-seconds each part of the devstack used (the most `ps` saw for it), so a change
# to one part is measured in that part's seconds rather than in creates/s, which the machine's
# noise hides. Compare two checkouts by running it in each, back to back.
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=$(mktemp)
log=$(mktemp)
pnpm bench:vm "$@" > "$log" 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
  ps -eo times,args | awk '
    /services\/compute\/src\/main.ts/ {c+=$1}
    /vm-create.bench.ts/ && /preflight/ {b+=$1}
    /agent-sim\/src\/main.ts/ {a+=$1}
    /postgres/ && !/awk/ {p+=$1}
    /nats-server/ {n+=$1}
    END {print c+0, b+0, a+0, p+0, n+0}' >> "$samples"
  sleep 1
done
wait "$bench" || { cat "$log"; exit 1; }
grep -v '^{' "$log" | tail -5
awk '{for(i=1;i<=5;i++) if($i>m[i]) m[i]=$i}
  END {printf "cpu seconds: compute %d, bench clients %d, agent-sim %d, postgres %d, nats %d\n", m[1], m[2], m[3], m[4], m[5]}' "$samples"
rm -f "$samples" "$log"
