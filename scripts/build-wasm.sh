#!/bin/sh
# Rebuilds the WebAssembly kernels from wasm/*.c with Debian's clang and lld
# (apt-get install clang lld): src/ml/kernels/gemm.wasm (own memory) and
# src/ml/kernels/heap-kernels.wasm (imports tfjs-backend-wasm's memory, so it must not touch any
# memory of its own: no data, no shadow stack; checked below with llvm-objdump).
# The binaries are committed, so only kernel authors need this.
# Targets WebAssembly SIMD (simd128) and bulk memory (memory.copy), both in Node 16.4 and later.
#   scripts/build-wasm.sh [output-dir]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/src/ml/kernels"}
flags="--target=wasm32 -msimd128 -mbulk-memory -O3 -ffreestanding -nostdlib -fno-builtin
  -Wall -Wextra -Werror -Wl,--no-entry -Wl,--strip-all"
# shellcheck disable=SC2086
clang $flags -Wl,--export-dynamic -Wl,--export=__heap_base \
  -o "$out/gemm.wasm" "$root/wasm/gemm.c"
# shellcheck disable=SC2086
clang $flags -Wl,--import-memory -o "$out/heap-kernels.wasm" "$root/wasm/heap-kernels.c" \
  "$root/wasm/winograd.c" "$root/wasm/depthwise.c"
objdump=$(command -v llvm-objdump || command -v llvm-objdump-14)
if "$objdump" -h "$out/heap-kernels.wasm" | grep -qw DATA ||
  "$objdump" -d "$out/heap-kernels.wasm" | grep -q 'global\.[gs]et'; then
  echo "heap-kernels.wasm uses memory of its own (static data or the stack pointer)" >&2
  exit 1
fi
