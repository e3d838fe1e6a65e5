#!/usr/bin/env bash
# Scale runs of Picket's scheduler and prober: 1,000, 10,000 and 50,000 targets at a 10 s
# interval against loopback servers (in a child process), each for DURATION (default
# 60s). Writes bench/out/scale-<n>.json per size and bench/out/scale.md (the table).
#   bench/run-scale.sh [DURATION] [SIZES...]     e.g. bench/run-scale.sh 60s 1000 10000
#   PROFILE=1 bench/run-scale.sh                 also bench/out/scale-<n>.cpu.pprof
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60s}
shift || true
sizes=("${@:-1000 10000 50000}")
read -r -a sizes <<<"${sizes[*]}"
out=bench/out
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/scale" ./bench/cmd/scale
files=()
for n in "${sizes[@]}"; do
  args=(-targets "$n" -duration "$duration" -out "$out/scale-$n.json")
  if [[ "${PROFILE:-}" == 1 ]]; then
    args+=(-cpuprofile "$out/scale-$n.cpu.pprof")
  fi
  echo "== $n targets for $duration (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$bin/scale" "${args[@]}"
  files+=("$out/scale-$n.json")
done
{
  echo "Picket scale runs, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3)"
  echo "(commands: bench/run-scale.sh $duration ${sizes[*]})"
  echo
  "$bin/scale" -summary "${files[@]}"
} >"$out/scale.md"
cat "$out/scale.md"
