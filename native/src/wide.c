/*
 * The native build's kernels written for wide vectors (no WebAssembly counterpart): Winograd
 * F(4×4, 3×3) convolutions and filter gradients with 16 channels per vector under AVX-512 and 8
 * under AVX2 (wide-winograd.h). Compiled once with the baseline flags; each function carries its
 * instruction set as a target attribute, and addon.c calls one only where the CPU has it.
 */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <stdlib.h>

#include "kernels.h"
#include "wide.h"

#define WIDE 16
#define TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define SUFFIX _avx512
#include "wide-winograd.h"
#undef WIDE
#undef TARGET
#undef SUFFIX

#define WIDE 8
#define TARGET "avx2,fma"
#define SUFFIX _avx2
#include "wide-winograd.h"
#undef WIDE
#undef TARGET
#undef SUFFIX
#endif
