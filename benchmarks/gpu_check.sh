#!/usr/bin/env bash
# One prepared check for a machine with a CUDA GPU; at most 8.5 minutes (the sum of the
# steps' time limits):
#   bash benchmarks/gpu_check.sh [WORKDIR]
# 1. the CUDA tests (pytest -k cuda: the tests that skip without torch.cuda.is_available()),
# 2. training throughput: nas's trial loop with and without AMP and channels_last
#    against a plain PyTorch loop of the same network (benchmarks/gpu_train.py),
# 3. a `cuda` latency table for `tiny` at 32 px: `nas latency build`, then `validate`.
# Prints its figures. Exit 2 when there is no CUDA device (nothing checked), 1 when a
# step failed or ran past its time limit, 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORK=${1:-$(mktemp -d -t nas-gpu-check-XXXXXX)}
mkdir -p "$WORK"

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing checked" >&2
  exit 2
fi
python -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')"

failed=()
# step NAME SECONDS COMMAND...: run it under a time limit, note a failure, go on.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  local t0=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "-- $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

step "CUDA tests" 180 python -m pytest -q -rs -p no:randomly -p no:cacheprovider -k cuda \
  tests/train tests/model/test_export.py tests/latency tests/cli/test_cli.py
step "training throughput" 120 python benchmarks/gpu_train.py --images 20000 --epochs 3 --batch 256
DB="sqlite:///$WORK/cuda-latency.db"
step "latency table build (tiny, 32 px, cuda)" 150 \
  python -m nas latency build --space tiny --resolution 32 --target cuda --db "$DB" --calibrate 60
step "latency table validate" 60 \
  python -m nas latency validate --space tiny --resolution 32 --target cuda --db "$DB" \
  --n 60 --repeat 20 --passes 1

if [ ${#failed[@]} -gt 0 ]; then
  printf 'gpu_check: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "gpu_check: every step passed"
