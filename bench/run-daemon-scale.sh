#!/usr/bin/env bash
# Daemon-level scale runs: the whole `picket run` (scheduler, prober, engine, store and
# history, metrics scraped every 15 s, the status API read every 10 s) in a process of
# its own, against loopback servers in another, at a 10 s interval, each size for
# DURATION (default 60s) once ready. Writes bench/out/daemon-<n>.json per size and
# bench/out/daemon-scale.md (the table: RSS, cores, plan and gap deviation, first-
# interval coverage, with the load average beside each row).
#   bench/run-daemon-scale.sh [DURATION] [SIZES...]   e.g. bench/run-daemon-scale.sh 60s 1000 10000
#   PROFILE=1 bench/run-daemon-scale.sh               also bench/out/daemon-<n>.{heap,cpu}.pprof
# CPU figures are the daemon's own CPU time, but a machine shared with other work
# inflates them (and starves a daemon that needs more than its share): read them with
# the load average, or run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60s}
shift || true
sizes=("${@:-1000 10000 50000 100000}")
read -r -a sizes <<<"${sizes[*]}"
out=bench/out
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/scale" ./bench/cmd/scale
files=()
status=0
for n in "${sizes[@]}"; do
  args=(-daemon -targets "$n" -duration "$duration" -out "$out/daemon-$n.json")
  if [[ "${PROFILE:-}" == 1 ]]; then
    args+=(-heapprofile "$out/daemon-$n.heap.pprof" -cpuprofile "$out/daemon-$n.cpu.pprof")
  fi
  echo "== daemon, $n targets for $duration (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  if "$bin/scale" "${args[@]}"; then
    files+=("$out/daemon-$n.json")
  else
    status=1
  fi
done
if ((${#files[@]} > 0)); then
  {
    echo "Picket daemon scale runs, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3)"
    echo "(command: bench/run-daemon-scale.sh $duration ${sizes[*]})"
    echo
    "$bin/scale" -daemon -summary "${files[@]}"
  } >"$out/daemon-scale.md"
  cat "$out/daemon-scale.md"
fi
exit $status
