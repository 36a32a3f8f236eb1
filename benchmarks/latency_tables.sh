#!/usr/bin/env bash
# Build, kill/resume and validate latency tables for `tiny` and `mobile` at 64 px, on eager
# CPU PyTorch and onnxruntime-cpu (batch 1, 1 thread). Run it on a quiet machine:
#   bash benchmarks/latency_tables.sh [DB_URL] [N_VALIDATION]
# Output: the lines quoted in benchmarks/README.md.
set -uo pipefail
DB=${1:-sqlite:///benchmarks/latency.db}
N=${2:-200}
nas=(python -m nas)

echo "== how steady the machine is now (below 95% within +-10%, the goal cannot be checked)"
for target in cpu onnxruntime-cpu; do
  "${nas[@]}" latency noise --target "$target" --seconds 30 2>/dev/null
  # The canary stays in cache; mobile's networks (13-25 MB of weights) do not.
  "${nas[@]}" latency noise --target "$target" --seconds 30 --space mobile --resolution 64 2>/dev/null
done

echo "== resumability: kill a build of a fresh table after 20 s, then run it again"
RESUME_DB=sqlite:///benchmarks/latency-resume.db
rm -f benchmarks/latency-resume.db
timeout -s KILL 20 "${nas[@]}" latency build --space tiny --target cpu --db "$RESUME_DB" --calibrate 0 2>/dev/null
echo "(killed: exit $?)"
"${nas[@]}" latency build --space tiny --target cpu --db "$RESUME_DB" --calibrate 0 2>/dev/null

for target in cpu onnxruntime-cpu; do
  for space in "tiny" "mobile --resolution 64"; do
    echo "== build $space on $target"
    # A build exits 1 when some unit stayed noisy; it is resumable, so run it again.
    for try in 1 2 3; do
      # shellcheck disable=SC2086
      if ( time "${nas[@]}" latency build --space $space --target "$target" --db "$DB" ) 2>&1 | grep -v "━"; then
        break
      fi
    done
  done
done
# The table lasts; the calibration is refreshed right before use (seconds), as a search
# does at its start. Validation follows it at once, on 200 fresh architectures.
for target in cpu onnxruntime-cpu; do
  for space in "tiny" "mobile --resolution 64"; do
    echo "== calibrate (fresh) and validate $space on $target"
    # shellcheck disable=SC2086
    "${nas[@]}" latency calibrate --space $space --target "$target" --db "$DB" 2>/dev/null
    # shellcheck disable=SC2086
    "${nas[@]}" latency validate --space $space --target "$target" --db "$DB" --n "$N" --repeat 50 2>/dev/null
  done
done
"${nas[@]}" latency show --db "$DB"
