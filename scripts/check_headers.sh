#!/usr/bin/env bash
# Checks that every public header (include/soda/**/*.hpp) compiles on its own with GCC and with
# clang (-fsyntax-only: the whole front end, no code generation). GCC sees each header alone, so
# it checks that each includes what it uses. clang gets the system and third-party headers
# precompiled (GCC has checked the includes; this halves clang's time) and checks that it accepts
# each header. A header alone leaves its templates uninstantiated, so clang also builds the
# README's programs (examples/snippets/) into one program, which instantiates the main
# templates and runs clang's code generation, and runs the H·v example with its own check.
# Usage: scripts/check_headers.sh [gcc-compiler clang-compiler]   (default: g++ clang++-14)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install_deps.sh
# clang's -fopenmp reads omp.h from libomp and links libomp.
soda_install_packages clang-14 libomp-14-dev pkg-config

gcc="${1:-g++}"
clang="${2:-clang++-14}"

# soda::soda's definitions and include directories as CMakeLists.txt sets them with OpenBLAS
# found; xsimd, nlohmann_json, GLPK, zlib and cblas.h are on the compilers' default path.
read -r -a eigen_flags <<<"$(pkg-config --cflags eigen3)"
flags=(-std=c++20 -fopenmp -DEIGEN_USE_BLAS -DSODA_HAVE_CBLAS=1 -Iinclude "${eigen_flags[@]}")
# clang takes the SIMD paths of soda's own builds, GCC the default ones (SSE2 on x86-64).
clang_flags=("${flags[@]}" -march=native)
blas_dir="/usr/lib/$(gcc -print-multiarch)/openblas-openmp"
if [ -f "$blas_dir/libopenblas.so" ]; then
  link=("-Wl,-rpath,$blas_dir" "$blas_dir/libopenblas.so" -lz -lglpk)
else
  link=(-lopenblas -lz -lglpk)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

# Every <...> include of the tree (standard library, Eigen, xsimd, nlohmann_json, ...), precompiled.
grep -rh '^#include <' include/soda | sort -u >"$work/system.hpp"
"$clang" "${clang_flags[@]}" -x c++-header "$work/system.hpp" -o "$work/system.hpp.pch"

# The snippets as one program: each main() renamed, then a main() that runs the H·v example.
program="$work/snippets.cpp"
for snippet in examples/snippets/*.cpp examples/snippets/consumer/main.cpp; do
  name="$(basename "$(dirname "$snippet")")_$(basename "$snippet" .cpp)"
  printf '#define main %s\n#include "%s"\n#undef main\n' "$name" "$PWD/$snippet" >>"$program"
done
echo 'int main() { return snippets_gradient_and_hvp(); }' >>"$program"

# One compilation per line: "<gcc|clang> <header or source>"; a header goes through a one-line
# source that includes it, as a user's file would.
check_one() {
  local compiler="$1" file="$2" log
  log="$work/$(echo "$compiler $file" | tr '/ ' '__').log"
  local status=0
  if [[ "$file" == *.hpp && "$compiler" == gcc ]]; then
    echo "#include <${file#include/}>" |
      "$gcc" "${flags[@]}" -fsyntax-only -x c++ - >"$log" 2>&1 || status=$?
  elif [[ "$file" == *.hpp ]]; then
    echo "#include <${file#include/}>" |
      "$clang" "${clang_flags[@]}" -include-pch "$work/system.hpp.pch" -fsyntax-only -x c++ - \
        >"$log" 2>&1 || status=$?
  else
    "$clang" "${clang_flags[@]}" -O0 "$file" -o "$work/snippets" "${link[@]}" >"$log" 2>&1 ||
      status=$?
  fi
  if [ "$status" -ne 0 ]; then
    echo "FAIL: $compiler $file"
    mv "$log" "$log.failed"
  fi
}

jobs=("clang $program")
while IFS= read -r header; do
  jobs+=("gcc $header" "clang $header")
done < <(find include/soda -name '*.hpp' | sort)
echo "check_headers: ${#jobs[@]} compilations ($gcc, $clang), $(nproc) at a time"

export -f check_one
export gcc clang work flags_text="${flags[*]}" clang_flags_text="${clang_flags[*]}" \
  link_text="${link[*]}"
printf '%s\n' "${jobs[@]}" | xargs -P "$(nproc)" -I{} bash -c \
  'read -r -a flags <<<"$flags_text"; read -r -a clang_flags <<<"$clang_flags_text";
   read -r -a link <<<"$link_text"; check_one {}'

failed=0
for log in "$work"/*.failed; do
  [ -e "$log" ] || continue
  failed=$((failed + 1))
  echo "=== $(basename "$log" .log.failed)"
  grep -E ' error: ' "$log" | sort -u | head -n 20
done
if [ -x "$work/snippets" ]; then
  echo "check_headers: examples/snippets/gradient_and_hvp.cpp built by $clang:"
  if ! OMP_WAIT_POLICY=passive "$work/snippets" | tail -n 1; then
    echo "FAIL: gradient_and_hvp built by $clang exits with an error"
    failed=$((failed + 1))
  fi
fi
if [ "$failed" -ne 0 ]; then
  echo "check_headers: $failed failure(s) ($((SECONDS - start)) s)"
  exit 1
fi
echo "check_headers: all ${#jobs[@]} compilations passed ($((SECONDS - start)) s)"
