/*
 * Memory-bound float32 kernels that run in place on tfjs-backend-wasm's own heap: this module
 * imports the backend's WebAssembly.Memory, so tensors are read and written where they live,
 * with no copies in or out (src/ml/kernels/heap-kernels.ts passes their byte offsets).
 *
 * Because the memory is the backend's, this module must own none of it: no static data, no
 * globals in linear memory and no shadow stack (only scalar and v128 locals, which live in wasm
 * locals). scripts/build-wasm.sh checks the disassembly for any use of the stack pointer.
 * Freestanding: no libc. Build: scripts/build-wasm.sh.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* Rows summed in float32 SIMD lanes before a block's partial sums go into the float64 totals:
 * the float32 rounding error grows with the rows summed, so it is bounded at BLOCK rows. */
#define BLOCK 256

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* Adds the 4 lanes of s to acc[0..4). */
static inline void add_lanes(double *acc, v128_t s) {
  acc[0] += wasm_f32x4_extract_lane(s, 0);
  acc[1] += wasm_f32x4_extract_lane(s, 1);
  acc[2] += wasm_f32x4_extract_lane(s, 2);
  acc[3] += wasm_f32x4_extract_lane(s, 3);
}

/*
 * out[j] = sum over r < rows of x[r*c + j], for j < c: a reduction over every axis but the last
 * (per-channel sums of an NHWC tensor). Blocks of BLOCK rows are summed in float32 SIMD lanes,
 * 16 channels at a time, and the blocks' partial sums in float64 in `acc` (c doubles of scratch).
 */
EXPORT("sum_rows")
void sum_rows(const float *x, int rows, int c, float *out, double *acc) {
  for (int j = 0; j < c; j++) acc[j] = 0.0;
  for (int r0 = 0; r0 < rows; r0 += BLOCK) {
    const int r1 = min_int(rows, r0 + BLOCK);
    int j = 0;
    for (; j + 16 <= c; j += 16) {
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      for (int r = r0; r < r1; r++) {
        const float *p = x + r * c + j;
        s0 = wasm_f32x4_add(s0, wasm_v128_load(p));
        s1 = wasm_f32x4_add(s1, wasm_v128_load(p + 4));
        s2 = wasm_f32x4_add(s2, wasm_v128_load(p + 8));
        s3 = wasm_f32x4_add(s3, wasm_v128_load(p + 12));
      }
      add_lanes(acc + j, s0);
      add_lanes(acc + j + 4, s1);
      add_lanes(acc + j + 8, s2);
      add_lanes(acc + j + 12, s3);
    }
    for (; j + 4 <= c; j += 4) {
      v128_t s = wasm_f32x4_splat(0.0f);
      for (int r = r0; r < r1; r++) s = wasm_f32x4_add(s, wasm_v128_load(x + r * c + j));
      add_lanes(acc + j, s);
    }
    for (; j < c; j++) {
      float s = 0.0f;
      for (int r = r0; r < r1; r++) s += x[r * c + j];
      acc[j] += s;
    }
  }
  for (int j = 0; j < c; j++) out[j] = (float)acc[j];
}

/*
 * out[r*c + j] = a[r*c + j] OP v[j] (or v[j] OP a[r*c + j] when v_first), for r < rows, j < c:
 * a binary op with one operand broadcast along every axis but the last. IEEE single precision,
 * element by element, so the results are those of the backend's own kernels bit for bit.
 */
#define BROADCAST_ROWS(NAME, VOP, SOP)                                                          \
  static void NAME(const float *a, int rows, int c, const float *v, float *out, int v_first) {   \
    for (int r = 0; r < rows; r++) {                                                             \
      const float *ar = a + r * c;                                                               \
      float *o = out + r * c;                                                                    \
      int j = 0;                                                                                 \
      if (v_first) {                                                                             \
        for (; j + 4 <= c; j += 4)                                                               \
          wasm_v128_store(o + j, VOP(wasm_v128_load(v + j), wasm_v128_load(ar + j)));            \
        for (; j < c; j++) o[j] = v[j] SOP ar[j];                                                \
      } else {                                                                                   \
        for (; j + 4 <= c; j += 4)                                                               \
          wasm_v128_store(o + j, VOP(wasm_v128_load(ar + j), wasm_v128_load(v + j)));            \
        for (; j < c; j++) o[j] = ar[j] SOP v[j];                                                \
      }                                                                                          \
    }                                                                                            \
  }

BROADCAST_ROWS(add_rows, wasm_f32x4_add, +)
BROADCAST_ROWS(sub_rows, wasm_f32x4_sub, -)
BROADCAST_ROWS(mul_rows, wasm_f32x4_mul, *)
BROADCAST_ROWS(div_rows, wasm_f32x4_div, /)

/* op: 0 add, 1 subtract, 2 multiply, 3 divide; see BROADCAST_ROWS. */
EXPORT("broadcast_rows")
void broadcast_rows(int op, const float *a, int rows, int c, const float *v, float *out,
                    int v_first) {
  switch (op) {
    case 0: add_rows(a, rows, c, v, out, v_first); break;
    case 1: sub_rows(a, rows, c, v, out, v_first); break;
    case 2: mul_rows(a, rows, c, v, out, v_first); break;
    default: div_rows(a, rows, c, v, out, v_first); break;
  }
}
