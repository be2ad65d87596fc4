#!/usr/bin/env bash
# The main job: trains a ResNet-20 on Fashion-MNIST (Debian's dataset-fashion-mnist, installed by
# install_deps) for a budget of a few minutes on all cores, then reports test accuracy. Results
# land in runs/demo/ (checkpoint.safetensors, log.jsonl, summary.json). Arguments pass through to
# build/examples/train_cifar10 (e.g. --time-budget 600, --epochs 2, --data DIR for CIFAR-10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSODA_BUILD_EXAMPLES=ON
cmake --build build --target train_cifar10 -j"$(nproc)"
exec ./build/examples/train_cifar10 --model resnet20 --epochs 1 --time-budget 240 \
  --out runs/demo "$@"
