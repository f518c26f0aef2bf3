#!/usr/bin/env bash
# Run every jaxdl speed benchmark and write one JSON file per benchmark.
#
#   bash benchmarks/run_all.sh [--quick] [OUT_DIR]     (default OUT_DIR: bench_results/)
#
# Self-contained: works on a CPU-only machine and, unchanged, on a GPU host (each
# benchmark picks up CUDA through jax/torch when present). It installs nothing when
# the dependencies import; otherwise it installs the project with its bench extra.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=""
if [[ "${1:-}" == "--quick" ]]; then MODE="--quick"; shift; fi
OUT="${1:-bench_results}"
mkdir -p "$OUT"

if ! python -c "import jax, flax, optax, orbax.checkpoint, torch, sklearn" 2>/dev/null; then
  python -m pip install -q -e ".[bench]"
fi

status=0
for name in steps_per_loop input_pipeline overhead vs_pytorch scaling; do
  echo "## $name"
  if ! python -m "benchmarks.$name" $MODE --out "$OUT/$name.json"; then
    echo "benchmark $name FAILED" >&2
    status=1
  fi
  echo
done
echo "JSON written to $OUT/"
exit $status
