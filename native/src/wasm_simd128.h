/*
 * The subset of clang's <wasm_simd128.h> that the kernels in wasm/ use, for a native build
 * (native/binding.gyp): the same 128-bit operations written with GCC/clang vector extensions, so
 * the compiler emits SSE,
 * AVX (VEX-encoded), AVX-512 (EVEX) or NEON instructions for them, as the target allows, and may
 * vectorize the kernels' scalar loops wider. Semantics follow the WebAssembly SIMD specification
 * where they matter for results: f32x4.max returns NaN when either operand is NaN and +0 for
 * max(-0, +0); comparisons give all-ones or all-zero lanes. Floating-point contraction must be
 * off (-ffp-contract=off) so that results match the wasm build's.
 */
#ifndef CNN_CLASSROOM_WASM_SIMD128_SHIM_H
#define CNN_CLASSROOM_WASM_SIMD128_SHIM_H

#include <stdint.h>
#include <string.h>

typedef int32_t v128_t __attribute__((vector_size(16), aligned(16)));
typedef float cc_f32x4 __attribute__((vector_size(16)));
typedef double cc_f64x2 __attribute__((vector_size(16)));
typedef int64_t cc_i64x2 __attribute__((vector_size(16)));

#define CC_INLINE static inline __attribute__((always_inline))
#define CC_F(v) ((cc_f32x4)(v))
#define CC_V(v) ((v128_t)(v))

CC_INLINE v128_t wasm_v128_load(const void *p) {
  v128_t v;
  memcpy(&v, p, 16);
  return v;
}
CC_INLINE void wasm_v128_store(void *p, v128_t v) { memcpy(p, &v, 16); }
CC_INLINE v128_t wasm_v128_load32_splat(const void *p) {
  int32_t x;
  memcpy(&x, p, 4);
  return (v128_t){x, x, x, x};
}
CC_INLINE void wasm_v128_store32_lane_(void *p, v128_t v, int lane) {
  int32_t x = v[lane];
  memcpy(p, &x, 4);
}
CC_INLINE void wasm_v128_store64_lane_(void *p, v128_t v, int lane) {
  int64_t x = ((cc_i64x2)v)[lane];
  memcpy(p, &x, 8);
}
#define wasm_v128_store32_lane(p, v, lane) wasm_v128_store32_lane_((p), (v), (lane))
#define wasm_v128_store64_lane(p, v, lane) wasm_v128_store64_lane_((p), (v), (lane))

CC_INLINE v128_t wasm_f32x4_splat(float x) { return CC_V(((cc_f32x4){x, x, x, x})); }
CC_INLINE v128_t wasm_i32x4_splat(int32_t x) { return (v128_t){x, x, x, x}; }
CC_INLINE v128_t wasm_i32x4_make(int32_t a, int32_t b, int32_t c, int32_t d) {
  return (v128_t){a, b, c, d};
}
#define wasm_i32x4_extract_lane(v, lane) ((v)[(lane)])
#define wasm_f32x4_extract_lane(v, lane) (CC_F(v)[(lane)])
#define wasm_i32x4_shuffle(a, b, c0, c1, c2, c3)                                                 \
  __builtin_shuffle((a), (b), ((v128_t){(c0), (c1), (c2), (c3)}))

CC_INLINE v128_t wasm_f32x4_add(v128_t a, v128_t b) { return CC_V(CC_F(a) + CC_F(b)); }
CC_INLINE v128_t wasm_f32x4_sub(v128_t a, v128_t b) { return CC_V(CC_F(a) - CC_F(b)); }
CC_INLINE v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return CC_V(CC_F(a) * CC_F(b)); }
CC_INLINE v128_t wasm_f32x4_div(v128_t a, v128_t b) { return CC_V(CC_F(a) / CC_F(b)); }
CC_INLINE v128_t wasm_f32x4_sqrt(v128_t a) {
  cc_f32x4 f = CC_F(a);
  return CC_V(((cc_f32x4){__builtin_sqrtf(f[0]), __builtin_sqrtf(f[1]), __builtin_sqrtf(f[2]),
                          __builtin_sqrtf(f[3])}));
}
CC_INLINE v128_t wasm_f32x4_gt(v128_t a, v128_t b) { return CC_F(a) > CC_F(b); }
CC_INLINE v128_t wasm_f32x4_ge(v128_t a, v128_t b) { return CC_F(a) >= CC_F(b); }
CC_INLINE v128_t wasm_f32x4_lt(v128_t a, v128_t b) { return CC_F(a) < CC_F(b); }
CC_INLINE v128_t wasm_f32x4_le(v128_t a, v128_t b) { return CC_F(a) <= CC_F(b); }
CC_INLINE v128_t wasm_f32x4_eq(v128_t a, v128_t b) { return CC_F(a) == CC_F(b); }
CC_INLINE v128_t wasm_f32x4_ne(v128_t a, v128_t b) { return CC_F(a) != CC_F(b); }

CC_INLINE v128_t wasm_v128_and(v128_t a, v128_t b) { return a & b; }
CC_INLINE v128_t wasm_v128_or(v128_t a, v128_t b) { return a | b; }
CC_INLINE v128_t wasm_v128_xor(v128_t a, v128_t b) { return a ^ b; }
CC_INLINE v128_t wasm_v128_not(v128_t a) { return ~a; }
CC_INLINE v128_t wasm_v128_andnot(v128_t a, v128_t b) { return a & ~b; }
/* Bits of a where mask is 1, of b where it is 0. */
CC_INLINE v128_t wasm_v128_bitselect(v128_t a, v128_t b, v128_t mask) {
  return (a & mask) | (b & ~mask);
}
CC_INLINE int wasm_v128_any_true(v128_t a) { return (a[0] | a[1] | a[2] | a[3]) != 0; }

/* WebAssembly's f32x4.max: NaN if either is NaN; +0 for max(-0, +0). */
CC_INLINE v128_t wasm_f32x4_max(v128_t a, v128_t b) {
  const cc_f32x4 fa = CC_F(a), fb = CC_F(b);
  const v128_t gt = fa > fb, lt = fa < fb, nan = (fa != fa) | (fb != fb);
  const v128_t m = wasm_v128_bitselect(a, wasm_v128_bitselect(b, a & b, lt), gt);
  return wasm_v128_bitselect(CC_V(fa + fb), m, nan);
}
/* Pseudo-maximum b < a ? a : b (f32x4.pmax). */
CC_INLINE v128_t wasm_f32x4_pmax(v128_t a, v128_t b) {
  return wasm_v128_bitselect(a, b, CC_F(b) < CC_F(a));
}

CC_INLINE v128_t wasm_i32x4_add(v128_t a, v128_t b) { return a + b; }
CC_INLINE v128_t wasm_i32x4_sub(v128_t a, v128_t b) { return a - b; }

CC_INLINE v128_t wasm_f64x2_add(v128_t a, v128_t b) {
  return CC_V((cc_f64x2)a + (cc_f64x2)b);
}
CC_INLINE v128_t wasm_f64x2_promote_low_f32x4(v128_t a) {
  const cc_f32x4 f = CC_F(a);
  return CC_V(((cc_f64x2){(double)f[0], (double)f[1]}));
}

#endif
