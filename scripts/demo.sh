#!/usr/bin/env bash
# The main job: trains a ResNet-20 on Fashion-MNIST (Debian's dataset-fashion-mnist, installed by
# install_deps) for a budget of a few minutes on all cores and reports test accuracy, then
# analyses the trained model's Hessian (top eigenvalues, trace, density, per-layer curvature,
# loss landscape) and prints the spectrum summary. Results land in runs/demo/ (checkpoint,
# log.jsonl, summary.json) and runs/demo/spectrum/ (spectrum.json, CSVs, SVG plots). Arguments
# pass through to build/examples/train_cifar10 (e.g. --time-budget 600, --data DIR for CIFAR-10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh
soda_install_packages gnuplot-nox

# build/ is configured exactly as scripts/test.sh configures it (Ninja, unity batches, tests and
# examples on), so the two scripts run in either order and each reuses what the other compiled.
# An existing build/ keeps the generator it was made with (CMake refuses to switch).
generator=(-G Ninja)
if [ -f build/CMakeCache.txt ]; then generator=(); fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=32 \
  -DSODA_BUILD_TESTS=ON -DSODA_BUILD_BENCH=OFF -DSODA_BUILD_EXAMPLES=ON
cmake --build build --target train_cifar10 hessian_spectrum -j"$(nproc)"
./build/examples/train_cifar10 --model resnet20 --epochs 1 --time-budget 240 \
  --out runs/demo "$@"

# The spectrum on one batch of 128 training images, PyHessian's setting, with budgets that keep
# this step to a few minutes (see README for the full defaults).
# The data and model options given to training apply here too.
shared_args=(--model resnet20)
for ((i = 1; i <= $#; ++i)); do
  case "${!i}" in
    --data=* | --model=*) shared_args+=("${!i}") ;;
    --data | --model)
      j=$((i + 1))
      if ((j <= $#)); then shared_args+=("${!i}" "${!j}"); fi
      ;;
  esac
done
./build/examples/hessian_spectrum --checkpoint runs/demo/checkpoint.safetensors \
  "${shared_args[@]}" --top-k 2 --trace-samples 50 --density-steps 40 --layer-iterations 6 \
  --layer-trace-samples 10 --out runs/demo/spectrum
