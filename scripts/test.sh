#!/usr/bin/env bash
# CI entry point: optimized build (tests + examples, the README's snippets among them) and ctest,
# then a sanitizer (ASan + UBSan) build of the lower layers' tests and ctest again, then every
# public header on its own with GCC and clang (scripts/check_headers.sh), then a short fuzz run
# of every file reader (scripts/fuzz.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh
# The PyTorch parity test (tests/parity) runs the same ResNet in PyTorch; the plot tests
# (examples/plot_tests.cmake) render every plot the examples draw with gnuplot.
soda_install_packages python3-torch gnuplot-nox

jobs="$(nproc)"

# Unity builds (up to 32 sources per compiler run: one per test area) parse the headers once per batch instead of once per
# test file: about 4x less compile time, which keeps CI well inside its budget on 2 cores.
unity=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=32)

# Configures build folder $1 with Ninja, or with the generator it already has (CMake refuses to
# switch). scripts/demo.sh configures build/ with the same options as step 1, so that the two
# scripts run in either order and reuse each other's objects.
configure() {
  local dir="$1"
  shift
  local generator=(-G Ninja)
  if [ -f "$dir/CMakeCache.txt" ]; then generator=(); fi
  cmake -S . -B "$dir" "${generator[@]}" "$@"
}

# 1. Release build: the tests and the examples. The benches are left to `bench/README.md`'s
#    build (-DSODA_BUILD_BENCH=ON): compiling them costs CI about 2.5 minutes on 2 cores.
#    The examples include the README's snippets (examples/snippets/), which run as tests, with
#    readme_code (the README quotes them as they are) and install_route (cmake --install, then
#    find_package(soda) from a project of its own).
configure build -DCMAKE_BUILD_TYPE=Release "${unity[@]}" \
  -DSODA_BUILD_TESTS=ON -DSODA_BUILD_BENCH=OFF -DSODA_BUILD_EXAMPLES=ON
cmake --build build -j"$jobs"
# Two areas run at once: passive OpenMP waiting keeps their thread teams from spinning against
# each other on 2 cores (which slows small tests 10-30x).
OMP_WAIT_POLICY=passive ctest --test-dir build --output-on-failure -j"$jobs"

# 2. Sanitizer build: the tests of the layers that own memory (storage and views, kernels, the
#    tape, modules, optimizer state, file parsers, integer kernels). The areas above them
#    (hessian, models, train, parity) compose these and ran optimized in step 1; leaving them
#    out of this step saves about a third of CI's time on 2 cores.
#    -O1 -g1 (line tables only): reports still name files and lines, and the build is about
#    twice as fast as RelWithDebInfo's -O2 -g on 2 cores.
sanitized_areas=(core autodiff nn optim io data quant)
configure build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSODA_SANITIZE=ON "${unity[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DSODA_BUILD_TESTS=ON -DSODA_BUILD_BENCH=OFF -DSODA_BUILD_EXAMPLES=OFF
cmake --build build-sanitize -j"$jobs" --target "${sanitized_areas[@]/#/test_}"
# Leak checking stays on: libgomp and OpenBLAS (pthread) were checked not to
# report leaks under LeakSanitizer. If that ever changes, use detect_leaks=0.
# The storage cache is off so that a freed buffer is really freed (ASan sees misuse).
# Two test areas at a time with one thread each: two OpenMP teams of two on two cores would
# spin-wait on each other.
OMP_NUM_THREADS=1 \
SODA_STORAGE_CACHE_MB=0 ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir build-sanitize --output-on-failure -j"$jobs" \
  -L "^($(IFS='|'; echo "${sanitized_areas[*]}"))\$"

# 3. Every public header compiles on its own with GCC and with clang 14, and the snippets pass
#    clang's front end (template instantiation included).
bash scripts/check_headers.sh

# 4. The file readers under libFuzzer (safetensors, state dicts, IDX raw and gzip, CIFAR-10, the
#    integer model file): a short run of each from its seed corpus, with ASan + UBSan and a
#    256 MB memory limit (scripts/fuzz.sh SECONDS runs them longer).
bash scripts/fuzz.sh 5
