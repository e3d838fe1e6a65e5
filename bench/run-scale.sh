#!/usr/bin/env bash
# Scale runs at a 10 s interval against loopback servers (in a child process), each size
# for DURATION (default 60s).
#   bench/run-scale.sh [DURATION] [SIZES...]            the scheduler and prober alone
#       (default 1,000, 10,000, 50,000): bench/out/scale-<n>.json and bench/out/scale.md
#   bench/run-scale.sh --daemon [DURATION] [SIZES...]   the whole `picket run` (engine,
#       store and history, /metrics scraped every 15 s, /api/v1/status read every 10 s)
#       in a process of its own (default 1,000, 10,000, 50,000, 100,000):
#       bench/out/daemon-<n>.json and bench/out/daemon-scale.md (RSS, cores, plan and gap
#       deviation, first-interval coverage, the load average beside each row)
#   PROFILE=1 ...   also CPU profiles (and, with --daemon, heap profiles) per size
# CPU figures are the process's own CPU time, but a machine shared with other work
# inflates them (and starves a daemon that needs more than its share): read them with
# the load average, or run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=scale
md=scale.md
default_sizes="1000 10000 50000"
if [[ "${1:-}" == --daemon ]]; then
  mode=daemon
  md=daemon-scale.md
  default_sizes="1000 10000 50000 100000"
  shift
fi
duration=${1:-60s}
shift || true
sizes=("${@:-$default_sizes}")
read -r -a sizes <<<"${sizes[*]}"
out=bench/out
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/scale" ./bench/cmd/scale
flags=()
if [[ $mode == daemon ]]; then
  flags=(-daemon)
fi
files=()
status=0
for n in "${sizes[@]}"; do
  args=("${flags[@]}" -targets "$n" -duration "$duration" -out "$out/$mode-$n.json")
  if [[ "${PROFILE:-}" == 1 ]]; then
    args+=(-cpuprofile "$out/$mode-$n.cpu.pprof")
    if [[ $mode == daemon ]]; then
      args+=(-heapprofile "$out/$mode-$n.heap.pprof")
    fi
  fi
  echo "== $mode, $n targets for $duration (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  if "$bin/scale" "${args[@]}"; then
    files+=("$out/$mode-$n.json")
  else
    status=1
  fi
done
if ((${#files[@]} > 0)); then
  {
    echo "Picket $mode scale runs, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3)"
    echo "(command: bench/run-scale.sh $([[ $mode == daemon ]] && echo '--daemon ')$duration ${sizes[*]})"
    echo
    "$bin/scale" "${flags[@]}" -summary "${files[@]}"
  } >"$out/$md"
  cat "$out/$md"
fi
exit $status
