/*
 * The native build's kernels written for wide vectors (no WebAssembly counterpart): Winograd
 * F(4×4, 3×3) convolutions and filter gradients, and pointwise (1×1) convolutions with both
 * gradients, 16 channels per vector under AVX-512 and 8 under AVX2 (wide-kernels.h). Compiled once with the baseline flags; each function carries its
 * instruction set as a target attribute, and addon.c calls one only where the CPU has it.
 */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <stdlib.h>

#include "kernels.h"
#include "wide.h"

/* Scratch kept per thread between calls (worker threads each load the addon's functions but
 * share its statics, hence thread-local): a fresh allocation of this size is an mmap, and its
 * page faults cost as much as a small layer's convolution. Grows, never shrinks; NULL when
 * memory is short. */
static __thread void *scratch;
static __thread size_t scratch_bytes;

static void *wide_scratch(size_t bytes) {
  if (bytes > scratch_bytes) {
    free(scratch);
    scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
    scratch_bytes = scratch == NULL ? 0 : bytes;
  }
  return scratch;
}

/* A second per-thread scratch (the im2col chunks of wide_conv_gemm and its gradients, whose
 * products take wide_scratch). */
static __thread void *col_buf;
static __thread size_t col_bytes;

static void *col_scratch(size_t bytes) {
  if (bytes > col_bytes) {
    free(col_buf);
    col_buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    col_bytes = col_buf == NULL ? 0 : bytes;
  }
  return col_buf;
}

#define WIDE 16
#define TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define SUFFIX _avx512
#include "wide-kernels.h"
#undef WIDE
#undef TARGET
#undef SUFFIX

#define WIDE 8
#define TARGET "avx2,fma"
#define SUFFIX _avx2
#include "wide-kernels.h"
#undef WIDE
#undef TARGET
#undef SUFFIX
#endif
