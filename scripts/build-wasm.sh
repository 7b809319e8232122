#!/bin/sh
# Rebuilds src/ml/kernels/gemm.wasm from wasm/gemm.c with Debian's clang and lld
# (apt-get install clang lld). The binary is committed, so only kernel authors need this.
# Targets WebAssembly SIMD (simd128) and bulk memory (memory.copy), both in Node 16.4 and later.
#   scripts/build-wasm.sh [output.wasm]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/src/ml/kernels/gemm.wasm"}
clang --target=wasm32 -msimd128 -mbulk-memory -O3 -ffreestanding -nostdlib -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--export=__heap_base -Wl,--strip-all \
  -o "$out" "$root/wasm/gemm.c"
