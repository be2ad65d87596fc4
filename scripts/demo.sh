#!/usr/bin/env bash
# Builds and runs the demo example (examples/demo.cpp); arguments pass through.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSODA_BUILD_EXAMPLES=ON
cmake --build build --target demo -j"$(nproc)"
exec ./build/examples/demo "$@"
