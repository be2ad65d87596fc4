#!/usr/bin/env bash
# Installs the Debian packages soda needs, if any is missing.
# Meant to be sourced (by scripts/test.sh and scripts/demo.sh) or run directly.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
fi

# Installs whichever of the given Debian packages are missing.
soda_install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "install_deps: missing: ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# What building soda, its tests, benchmarks and examples needs. libdnnl-dev is bench_integer_gemm's
# peer (oneDNN's u8s8s32 GEMM); its CMake config needs ocl-icd-opencl-dev.
soda_install_packages cmake ninja-build g++ make libxsimd-dev libeigen3-dev doctest-dev libbenchmark-dev \
  libopenblas-dev libopenblas-openmp-dev libcli11-dev nlohmann-json3-dev zlib1g-dev \
  dataset-fashion-mnist libdnnl-dev ocl-icd-opencl-dev libglpk-dev
