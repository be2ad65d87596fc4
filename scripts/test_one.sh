#!/usr/bin/env bash
# Compiles and runs one test file on its own (with doctest's main), for quick iteration on a
# single header without building a whole test area: scripts/test_one.sh tests/nn/test_linear.cpp
# [doctest options]. Binaries go to build-one/ (override with SODA_TEST_ONE_DIR).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source="$1"
shift
out_dir="${SODA_TEST_ONE_DIR:-build-one}"
mkdir -p "$out_dir"
main_object="$out_dir/test_main.o"
[[ -f "$main_object" ]] || c++ -std=c++20 -O1 -c tests/test_main.cpp -o "$main_object"
binary="$out_dir/$(basename "${source%.cpp}")"
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
c++ -std=c++20 -O2 -march=native -fopenmp -Wall -Wextra -Wno-maybe-uninitialized \
  -DEIGEN_USE_BLAS -DSODA_HAVE_CBLAS=1 -Iinclude -Itests -isystem /usr/include/eigen3 \
  "$source" "$main_object" -o "$binary" -Wl,-rpath,"$blas" "$blas/libopenblas.so" -lz
"$binary" "$@"
