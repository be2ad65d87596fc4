#!/usr/bin/env bash
# Builds soda's libFuzzer targets (fuzz/*.cpp, with Debian's clang 14 under ASan + UBSan) in
# build-fuzz/ and runs each for a bounded time, one after the other, from its seed corpus
# (fuzz/corpus/<target>/). Fails on any crash, leak, UB report, allocation above 256 MB or input
# slower than 10 s; the input that failed is left in build-fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]   run each target (default: all) SECONDS (default 20)
#   scripts/fuzz.sh --write-seeds           rewrite fuzz/corpus/ from files soda writes
#
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (kept between runs), never into
# the committed seeds. No network is needed. To replay a failing input after a fix:
#   build-fuzz/bin/<target> build-fuzz/artifacts/<target>-crash-...
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh
soda_install_packages clang-14 libclang-rt-14-dev libomp-14-dev zlib1g-dev libeigen3-dev libxsimd-dev nlohmann-json3-dev

build=build-fuzz
targets_all=(safetensors state_dict idx idx_gzip cifar10 integer_resnet_file)
cxx=clang++-14
common=(-std=c++20 -Iinclude -isystem /usr/include/eigen3 -fopenmp -march=native
  -O1 -gline-tables-only -fno-omit-frame-pointer -Wall -Wextra)
fuzz_flags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
mkdir -p "$build/bin" "$build/artifacts"

# Compiles fuzz/<name>.cpp into $build/bin/<name> unless the binary is newer than every source.
build_one() {
  local name="$1"
  shift
  local out="$build/bin/$name"
  if [ -x "$out" ] && [ -z "$(find fuzz include tests/quant/random_plan.hpp -newer "$out" \
    \( -name '*.hpp' -o -name '*.cpp' \) -print -quit)" ]; then
    return 0
  fi
  "$cxx" "${common[@]}" "$@" "fuzz/$name.cpp" -o "$out.tmp" -lz
  mv "$out.tmp" "$out"
}

if [ "${1:-}" = "--write-seeds" ]; then
  build_one write_seeds -fsanitize=address,undefined -fno-sanitize-recover=all
  rm -rf fuzz/corpus
  OMP_NUM_THREADS=1 "$build/bin/write_seeds" fuzz/corpus
  du -ab fuzz/corpus | sort -n | tail -n 20
  exit 0
fi

seconds="${1:-20}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${targets_all[@]}")
case "$seconds" in
'' | *[!0-9]*)
  echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2
  exit 2
  ;;
esac

# Two compilers at once on two cores; each target is one translation unit.
pids=()
for target in "${targets[@]}"; do
  [ -f "fuzz/$target.cpp" ] || { echo "fuzz.sh: no target fuzz/$target.cpp" >&2; exit 2; }
  build_one "$target" "${fuzz_flags[@]}" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$(nproc)" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${seconds}s"
  # -malloc_limit_mb: one allocation above it is a failure (a header that sizes memory unchecked).
  # ASan's quarantine of freed blocks (256 MB by default) would count against -rss_limit_mb.
  if ! OMP_NUM_THREADS=1 ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$build/bin/$target" "$corpus" "fuzz/corpus/$target" -max_total_time="$seconds" \
    -rss_limit_mb=256 -malloc_limit_mb=256 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$target-" 2>"$build/$target.log"; then
    failed+=("$target")
    tail -n 60 "$build/$target.log" >&2
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|DONE|INITED" "$build/$target.log" || true
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]} (inputs in $build/artifacts/, logs in $build/*.log)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds}s each with no finding"
