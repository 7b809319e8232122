/*
 * Float32 kernels that run in place on tfjs-backend-wasm's own heap (memory-bound reductions and
 * broadcasts, batch norm and its gradient, the max-pool gradient, the fused Adam step, a direct
 * convolution for few input channels, LeNet-shaped conv gradients; winograd.c, linked into the
 * same module, adds the 3×3 Winograd convolutions): this module
 * imports the backend's WebAssembly.Memory, so tensors are read and written where they live,
 * with no copies in or out (src/ml/kernels/heap-kernels.ts passes their byte offsets).
 *
 * Because the memory is the backend's, this module must own none of it: no static data, no
 * globals in linear memory and no shadow stack (only scalar and v128 locals, which live in wasm
 * locals). scripts/build-wasm.sh checks the disassembly for any use of the stack pointer.
 * Freestanding: no libc. Build: scripts/build-wasm.sh.
 */
#include <wasm_simd128.h>

#ifndef EXPORT
#define EXPORT(name) __attribute__((export_name(name)))
#endif

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
 * Per-channel batch statistics of a row-major [rows, c] array in two passes: out[j] the mean
 * (sum_rows' blocked sums over rows) and out[c + j] the biased variance, the mean of
 * (x − out[j])² (float32 squares summed in float32 lanes within blocks of BLOCK rows, float64
 * across them), as tf.moments defines them over every axis but the last. acc: c doubles.
 */
EXPORT("moments_rows")
void moments_rows(const float *x, int rows, int c, float *out, double *acc) {
  sum_rows(x, rows, c, out, acc);
  for (int j = 0; j < c; j++) {
    out[j] = (float)(acc[j] / rows);
    acc[j] = 0.0;
  }
  const float *m = out;
  for (int r0 = 0; r0 < rows; r0 += BLOCK) {
    const int r1 = min_int(rows, r0 + BLOCK);
    int j = 0;
    for (; j + 16 <= c; j += 16) {
      const v128_t m0 = wasm_v128_load(m + j), m1 = wasm_v128_load(m + j + 4);
      const v128_t m2 = wasm_v128_load(m + j + 8), m3 = wasm_v128_load(m + j + 12);
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      for (int r = r0; r < r1; r++) {
        const float *p = x + r * c + j;
        const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(p), m0);
        const v128_t d1 = wasm_f32x4_sub(wasm_v128_load(p + 4), m1);
        const v128_t d2 = wasm_f32x4_sub(wasm_v128_load(p + 8), m2);
        const v128_t d3 = wasm_f32x4_sub(wasm_v128_load(p + 12), m3);
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d0, d0));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(d1, d1));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(d2, d2));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(d3, d3));
      }
      add_lanes(acc + j, s0);
      add_lanes(acc + j + 4, s1);
      add_lanes(acc + j + 8, s2);
      add_lanes(acc + j + 12, s3);
    }
    for (; j + 4 <= c; j += 4) {
      const v128_t mj = wasm_v128_load(m + j);
      v128_t s = wasm_f32x4_splat(0.0f);
      for (int r = r0; r < r1; r++) {
        const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + r * c + j), mj);
        s = wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
      }
      add_lanes(acc + j, s);
    }
    for (; j < c; j++) {
      float s = 0.0f;
      for (int r = r0; r < r1; r++) {
        const float d = x[r * c + j] - m[j];
        s += d * d;
      }
      acc[j] += s;
    }
  }
  for (int j = 0; j < c; j++) out[c + j] = (float)(acc[j] / rows);
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

/* out[r*c + j] = (x[r*c + j] - m[j]) * a[j] + b[j]: batch norm per channel (inference and forward
 * pass, with m the mean, a = scale / sqrt(variance + eps) and b the offset). Subtracting the mean
 * first keeps the error proportional to |x - mean|, not to |mean * a|. */
EXPORT("normalize_rows")
void normalize_rows(const float *x, int rows, int c, const float *m, const float *a,
                    const float *b, float *out) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *o = out + r * c;
    int j = 0;
    for (; j + 4 <= c; j += 4)
      wasm_v128_store(o + j, wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j),
                                                                          wasm_v128_load(m + j)),
                                                           wasm_v128_load(a + j)),
                                            wasm_v128_load(b + j)));
    for (; j < c; j++) o[j] = (xr[j] - m[j]) * a[j] + b[j];
  }
}

/*
 * Batch norm's gradient per channel over a row-major [rows, c] in one pass (the five outputs of
 * tfjs-core's FusedBatchNorm gradient take fourteen passes): dx[r*c + j] = (dy * rs[j]) * s[j]
 * with rs = 1 / sqrt(variance + eps) and s the scale, as tfjs-core multiplies them, and the sums
 * acc[j] = sum of dy and acc[c + j] = sum of dy * (x - m[j]) over the rows (float32 products and
 * block sums in f, 2c floats of scratch; float64 across blocks of BLOCK rows in acc, 2c doubles).
 * With dx null, only the sums (rs and s unused).
 */
EXPORT("batch_norm_grad")
void batch_norm_grad(const float *dy, const float *x, int rows, int c, const float *m,
                     const float *rs, const float *s, float *dx, float *f, double *acc) {
  for (int j = 0; j < 2 * c; j++) acc[j] = 0.0;
  for (int r0 = 0; r0 < rows; r0 += BLOCK) {
    const int r1 = min_int(rows, r0 + BLOCK);
    for (int j = 0; j < 2 * c; j++) f[j] = 0.0f;
    for (int r = r0; r < r1; r++) {
      const float *d = dy + r * c, *xr = x + r * c;
      int j = 0;
      for (; j + 4 <= c; j += 4) {
        const v128_t dj = wasm_v128_load(d + j);
        const v128_t xm = wasm_f32x4_sub(wasm_v128_load(xr + j), wasm_v128_load(m + j));
        wasm_v128_store(f + j, wasm_f32x4_add(wasm_v128_load(f + j), dj));
        wasm_v128_store(f + c + j,
                        wasm_f32x4_add(wasm_v128_load(f + c + j), wasm_f32x4_mul(dj, xm)));
      }
      for (; j < c; j++) {
        f[j] += d[j];
        f[c + j] += d[j] * (xr[j] - m[j]);
      }
      if (dx == 0) continue;
      float *o = dx + r * c;
      for (j = 0; j + 4 <= c; j += 4)
        wasm_v128_store(o + j, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(d + j),
                                                             wasm_v128_load(rs + j)),
                                              wasm_v128_load(s + j)));
      for (; j < c; j++) o[j] = (d[j] * rs[j]) * s[j];
    }
    for (int j = 0; j < 2 * c; j++) acc[j] += f[j];
  }
}

/*
 * The sums of batch_norm_grad without its dx: f and acc as there (acc[j] = sum of dy,
 * acc[c + j] = sum of dy * (x - m[j]) over the rows, float64 across blocks of BLOCK rows).
 */
EXPORT("batch_norm_sums")
void batch_norm_sums(const float *dy, const float *x, int rows, int c, const float *m, float *f,
                     double *acc) {
  batch_norm_grad(dy, x, rows, c, m, 0, 0, 0, f, acc);
}

/*
 * out[r*c + j] = dy[r*c + j] * a[j] + (x[r*c + j] - m[j]) * b[j] + k[j]: the input gradient of
 * batch norm in training (statistics of the batch itself) once batch_norm_sums has given the
 * per-channel coefficients.
 */
EXPORT("batch_norm_train_dx")
void batch_norm_train_dx(const float *dy, const float *x, int rows, int c, const float *m,
                         const float *a, const float *b, const float *k, float *out) {
  for (int r = 0; r < rows; r++) {
    const float *d = dy + r * c, *xr = x + r * c;
    float *o = out + r * c;
    int j = 0;
    for (; j + 4 <= c; j += 4) {
      const v128_t xm = wasm_f32x4_sub(wasm_v128_load(xr + j), wasm_v128_load(m + j));
      const v128_t t = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(d + j), wasm_v128_load(a + j)),
                                      wasm_f32x4_mul(xm, wasm_v128_load(b + j)));
      wasm_v128_store(o + j, wasm_f32x4_add(t, wasm_v128_load(k + j)));
    }
    for (; j < c; j++) o[j] = (d[j] * a[j] + (xr[j] - m[j]) * b[j]) + k[j];
  }
}

/*
 * MaxPoolGrad for 2x2 windows at stride 2 that tile x exactly (LeNet's pools): windows do not
 * overlap, so each input gets its window's gradient or 0, written once (no zeroing pass, no
 * accumulation). Same tie rule: the first maximum in row-major order (strictly greater wins).
 * Channels 4 at a time; a last group overlapping the previous one when c is not a multiple of 4
 * (requires c >= 4) recomputes a few channels with identical results.
 */
static void max_pool_grad_2x2(const float *x, const float *dy, float *dx, int batch, int h, int w,
                              int c, int oh, int ow) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int b = 0; b < batch; b++) {
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        const int p00 = ((b * h + 2 * oy) * w + 2 * ox) * c;
        const int p01 = p00 + c, p10 = p00 + w * c, p11 = p10 + c;
        const float *g = dy + ((b * oh + oy) * ow + ox) * c;
        for (int ch0 = 0; ch0 < c; ch0 += 4) {
          const int ch = ch0 + 4 <= c ? ch0 : c - 4;
          const v128_t v00 = wasm_v128_load(x + p00 + ch), v01 = wasm_v128_load(x + p01 + ch);
          const v128_t v10 = wasm_v128_load(x + p10 + ch), v11 = wasm_v128_load(x + p11 + ch);
          /* Winner masks in row-major order: a later tap wins only when strictly greater. */
          const v128_t m01 = wasm_f32x4_gt(v01, v00);
          v128_t best = wasm_v128_bitselect(v01, v00, m01);
          const v128_t m10 = wasm_f32x4_gt(v10, best);
          best = wasm_v128_bitselect(v10, best, m10);
          const v128_t m11 = wasm_f32x4_gt(v11, best);
          const v128_t w11 = m11;
          const v128_t w10 = wasm_v128_andnot(m10, m11);
          const v128_t w01 = wasm_v128_andnot(m01, wasm_v128_or(m10, m11));
          const v128_t w00 = wasm_v128_not(wasm_v128_or(m01, wasm_v128_or(m10, m11)));
          const v128_t gv = wasm_v128_load(g + ch);
          wasm_v128_store(dx + p00 + ch, wasm_v128_bitselect(gv, zero, w00));
          wasm_v128_store(dx + p01 + ch, wasm_v128_bitselect(gv, zero, w01));
          wasm_v128_store(dx + p10 + ch, wasm_v128_bitselect(gv, zero, w10));
          wasm_v128_store(dx + p11 + ch, wasm_v128_bitselect(gv, zero, w11));
        }
      }
    }
  }
}

/*
 * MaxPoolGrad (NHWC, no dilation), TensorFlow's semantics: each window's output gradient goes to
 * its maximum, the first in row-major order on ties; padding never wins; overlaps add up.
 * Channels 4 at a time in SIMD lanes (the window's first tap in bounds seeds the maxima; later
 * taps win only when strictly greater), the rest one by one.
 */
EXPORT("max_pool_grad")
void max_pool_grad(const float *x, const float *dy, float *dx, int batch, int h, int w, int c,
                   int fh, int fw, int o, int sh, int sw, int pt, int pl, int oh, int ow) {
  (void)o; /* the conv geometry's output channels: a pool has c */
  if (fh == 2 && fw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && h == 2 * oh &&
      w == 2 * ow && c >= 4) {
    max_pool_grad_2x2(x, dy, dx, batch, h, w, c, oh, ow);
    return;
  }
  __builtin_memset(dx, 0, sizeof(float) * batch * h * w * c);
  const v128_t lane = wasm_i32x4_make(0, 1, 2, 3);
  for (int b = 0; b < batch; b++) {
    for (int oy = 0; oy < oh; oy++) {
      const int y0 = oy * sh - pt;
      const int i0 = y0 < 0 ? -y0 : 0, i1 = min_int(fh, h - y0);
      for (int ox = 0; ox < ow; ox++) {
        const int x0 = ox * sw - pl;
        const int j0 = x0 < 0 ? -x0 : 0, j1 = min_int(fw, w - x0);
        if (i0 >= i1 || j0 >= j1) continue;
        const float *g = dy + ((b * oh + oy) * ow + ox) * c;
        const int first = ((b * h + y0 + i0) * w + x0 + j0) * c;
        int ch = 0;
        for (; ch + 4 <= c; ch += 4) {
          v128_t best = wasm_v128_load(x + first + ch);
          v128_t arg = wasm_i32x4_add(wasm_i32x4_splat(first + ch), lane);
          for (int i = i0; i < i1; i++) {
            for (int j = (i == i0 ? j0 + 1 : j0); j < j1; j++) {
              const int base = ((b * h + y0 + i) * w + x0 + j) * c + ch;
              const v128_t v = wasm_v128_load(x + base);
              const v128_t gt = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, gt);
              arg = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(base), lane), arg, gt);
            }
          }
          dx[wasm_i32x4_extract_lane(arg, 0)] += g[ch];
          dx[wasm_i32x4_extract_lane(arg, 1)] += g[ch + 1];
          dx[wasm_i32x4_extract_lane(arg, 2)] += g[ch + 2];
          dx[wasm_i32x4_extract_lane(arg, 3)] += g[ch + 3];
        }
        for (; ch < c; ch++) {
          float best = x[first + ch];
          int arg = first + ch;
          for (int i = i0; i < i1; i++) {
            for (int j = (i == i0 ? j0 + 1 : j0); j < j1; j++) {
              const int at = ((b * h + y0 + i) * w + x0 + j) * c + ch;
              if (x[at] > best) {
                best = x[at];
                arg = at;
              }
            }
          }
          dx[arg] += g[ch];
        }
      }
    }
  }
}

/*
 * Zero-padded copy of image b of x [batch, h, w, c] for a stride-1 convolution with rows rows and
 * owp output columns (owp a multiple of 4): xp[(r * wpp + i) * c + k] = x[b, r - pt, i - pl, k]
 * inside x, else 0, for r < rows and i < wpp = owp + fw - 1 rounded up to 4 (so every 4-lane load
 * of a filter tap over the output columns stays inside the row).
 */
static void pad_image(const float *x, int b, int h, int w, int c, int pt, int pl, int rows,
                      int wpp, float *xp) {
  for (int r = 0; r < rows; r++) {
    const int iy = r - pt;
    float *dst = xp + r * wpp * c;
    if (iy < 0 || iy >= h) {
      for (int i = 0; i < wpp * c; i++) dst[i] = 0.0f;
      continue;
    }
    const float *row = x + (b * h + iy) * w * c;
    for (int i = 0; i < wpp; i++) {
      const int ix = i - pl;
      const int inside = ix >= 0 && ix < w;
      for (int k = 0; k < c; k++) dst[i * c + k] = inside ? row[ix * c + k] : 0.0f;
    }
  }
}

static inline int padded_width(int ow, int fw) {
  const int owp = (ow + 3) & ~3;
  return (owp + fw - 1 + 3) & ~3;
}

/*
 * vacc[4·k·vs ..] += the SIMD partial sums over oy < oh, ox < owp of
 * xp[(oy·wpp) + k + ox] · dyt[oy·ds + ox], for the n ≤ 5 taps k < n of one filter row and one
 * output channel: n independent accumulators over the whole image (one chain would wait on the
 * adder's latency), dy loaded once for all of them. Inlined, so that the n = 5 call (5×5 filters)
 * compiles without the tests on n: 3.4 → 1.5 ms for LeNet's conv1 at batch 128.
 */
static inline __attribute__((always_inline)) void
filter_grad_c1_taps(const float *xp, int wpp, const float *dyt, int ds, int oh, int owp,
                    float *vacc, int vs, int n) {
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0, s4 = s0;
  for (int oy = 0; oy < oh; oy++) {
    const float *xr = xp + oy * wpp, *dv = dyt + oy * ds;
    for (int ox = 0; ox < owp; ox += 4) {
      const v128_t d = wasm_v128_load(dv + ox);
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(xr + ox), d));
      if (n > 1) s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(xr + ox + 1), d));
      if (n > 2) s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(xr + ox + 2), d));
      if (n > 3) s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(xr + ox + 3), d));
      if (n > 4) s4 = wasm_f32x4_add(s4, wasm_f32x4_mul(wasm_v128_load(xr + ox + 4), d));
    }
  }
  wasm_v128_store(vacc, wasm_f32x4_add(wasm_v128_load(vacc), s0));
  if (n > 1) wasm_v128_store(vacc + vs, wasm_f32x4_add(wasm_v128_load(vacc + vs), s1));
  if (n > 2) wasm_v128_store(vacc + 2 * vs, wasm_f32x4_add(wasm_v128_load(vacc + 2 * vs), s2));
  if (n > 3) wasm_v128_store(vacc + 3 * vs, wasm_f32x4_add(wasm_v128_load(vacc + 3 * vs), s3));
  if (n > 4) wasm_v128_store(vacc + 4 * vs, wasm_f32x4_add(wasm_v128_load(vacc + 4 * vs), s4));
}

/*
 * Conv2DBackpropFilter for one input channel at stride 1 (a grayscale first layer, LeNet's conv1):
 * dw[kh, kw, 0, o] = sum over b, oy, ox of x[b, oy + kh - pt, ox + kw - pl] * dy[b, oy, ox, o],
 * zero outside x. Vectorized along the output row (ox), where both operands are contiguous once
 * each image is zero-padded and its dy transposed to channel-major rows, in scratch:
 *   xp: (oh + fh - 1) * padded_width(ow, fw) floats; dyt: oh * co * owp floats (owp = ow
 *   rounded up to 4); vacc: fh * fw * co * 4 floats (SIMD partial sums); acc: fh * fw * co
 *   doubles (totals, flushed from vacc after each image so float32 sums run over one image).
 */
EXPORT("conv2d_filter_grad_c1")
void conv2d_filter_grad_c1(const float *x, const float *dy, float *dw, int batch, int h, int w,
                           int c, int fh, int fw, int co, int sh, int sw, int pt, int pl, int oh,
                           int ow, float *xp, float *dyt, float *vacc, double *acc) {
  (void)c; /* 1 */
  (void)sh; /* 1 */
  (void)sw; /* 1 */
  const int owp = (ow + 3) & ~3;
  const int wpp = padded_width(ow, fw);
  const int taps = fh * fw * co;
  for (int t = 0; t < taps; t++) acc[t] = 0.0;
  for (int i = 0; i < oh * co * owp; i++) dyt[i] = 0.0f;
  for (int b = 0; b < batch; b++) {
    for (int t = 0; t < 4 * taps; t++) vacc[t] = 0.0f;
    pad_image(x, b, h, w, 1, pt, pl, oh + fh - 1, wpp, xp);
    const float *d = dy + b * oh * ow * co;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int o = 0; o < co; o++) dyt[(oy * co + o) * owp + ox] = d[(oy * ow + ox) * co + o];
    for (int kh = 0; kh < fh; kh++)
      for (int o = 0; o < co; o++)
        for (int kw = 0; kw < fw; kw += 5)
          if (fw - kw >= 5) /* a constant n: the tests on it fold away */
            filter_grad_c1_taps(xp + kh * wpp + kw, wpp, dyt + o * owp, co * owp, oh, owp,
                                vacc + 4 * ((kh * fw + kw) * co + o), 4 * co, 5);
          else
            filter_grad_c1_taps(xp + kh * wpp + kw, wpp, dyt + o * owp, co * owp, oh, owp,
                                vacc + 4 * ((kh * fw + kw) * co + o), 4 * co, fw - kw);
    for (int t = 0; t < taps; t++)
      acc[t] += (double)vacc[4 * t] + vacc[4 * t + 1] + vacc[4 * t + 2] + vacc[4 * t + 3];
  }
  for (int t = 0; t < taps; t++) dw[t] = (float)acc[t];
}

/* Stores the first n (1..8) lanes of a then b at p. */
static inline void store_lanes(float *p, v128_t a, v128_t b, int n) {
  if (n >= 4) {
    wasm_v128_store(p, a);
    p += 4;
    n -= 4;
    a = b;
  }
  if (n >= 4) {
    wasm_v128_store(p, a);
    return;
  }
  if (n >= 2) {
    wasm_v128_store64_lane(p, a, 0);
    p += 2;
    n -= 2;
    a = wasm_i32x4_shuffle(a, a, 2, 3, 2, 3);
  }
  if (n >= 1) wasm_v128_store32_lane(p, a, 0);
}

/*
 * Conv2D at stride 1 for few input channels (LeNet's conv1 and conv2): y[b, oy, ox, o] = bias[o]
 * + sum over kh, kw, k of x[b, oy + kh - pt, ox + kw - pl, k] * w[kh, kw, k, o], zero outside x,
 * then ReLU if relu. On a zero-padded copy of each image, a filter row's fw * c taps are
 * contiguous in x; four output pixels of a row times 8 output channels per step (8
 * accumulators), each input value broadcast, the taps' channels loaded 8 at a time from wp, a copy
 * of w zero-padded to groups of 8 channels. Scratch: xp of (oh + fh - 1) * wpp * c floats
 * (wpp = padded_width(ow, fw) pixels), wp of (fh * fw * c + 1) * co8 floats (co8 = co rounded up to
 * 8; the bias, zero-padded, last). bias: co floats or 0.
 */
static inline __attribute__((always_inline)) void
conv2d_direct_body(const float *x, const float *w, const float *bias, int relu, float *y, int batch,
                   int h, int wd, int c, int fh, int fw, int co, int pt, int pl, int oh, int ow,
                   float *xp, float *wp) {
  const int co8 = (co + 7) & ~7;
  const int wpp = padded_width(ow, fw);
  const int taps = fh * fw * c, row_taps = fw * c;
  for (int t = 0; t < taps; t++)
    for (int o = 0; o < co8; o++) wp[t * co8 + o] = o < co ? w[t * co + o] : 0.0f;
  float *wb = wp + taps * co8;
  for (int o = 0; o < co8; o++) wb[o] = bias && o < co ? bias[o] : 0.0f;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int b = 0; b < batch; b++) {
    pad_image(x, b, h, wd, c, pt, pl, oh + fh - 1, wpp, xp);
    for (int g = 0; g < co8; g += 8) {
      const int n = co - g < 8 ? co - g : 8;
      const v128_t b0 = wasm_v128_load(wb + g), b1 = wasm_v128_load(wb + g + 4);
      for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox += 4) {
          v128_t a00 = zero, a01 = zero, a10 = zero, a11 = zero;
          v128_t a20 = zero, a21 = zero, a30 = zero, a31 = zero;
          for (int kh = 0; kh < fh; kh++) {
            const float *xr = xp + ((oy + kh) * wpp + ox) * c;
            const float *wr = wp + kh * row_taps * co8 + g;
            for (int t = 0; t < row_taps; t++) {
              const v128_t w0 = wasm_v128_load(wr + t * co8);
              const v128_t w1 = wasm_v128_load(wr + t * co8 + 4);
              const v128_t x0 = wasm_v128_load32_splat(xr + t);
              const v128_t x1 = wasm_v128_load32_splat(xr + t + c);
              const v128_t x2 = wasm_v128_load32_splat(xr + t + 2 * c);
              const v128_t x3 = wasm_v128_load32_splat(xr + t + 3 * c);
              a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, w0));
              a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, w1));
              a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, w0));
              a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, w1));
              a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, w0));
              a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, w1));
              a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, w0));
              a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, w1));
            }
          }
          a00 = wasm_f32x4_add(a00, b0), a01 = wasm_f32x4_add(a01, b1);
          a10 = wasm_f32x4_add(a10, b0), a11 = wasm_f32x4_add(a11, b1);
          a20 = wasm_f32x4_add(a20, b0), a21 = wasm_f32x4_add(a21, b1);
          a30 = wasm_f32x4_add(a30, b0), a31 = wasm_f32x4_add(a31, b1);
          if (relu) {
            a00 = wasm_f32x4_max(a00, zero), a01 = wasm_f32x4_max(a01, zero);
            a10 = wasm_f32x4_max(a10, zero), a11 = wasm_f32x4_max(a11, zero);
            a20 = wasm_f32x4_max(a20, zero), a21 = wasm_f32x4_max(a21, zero);
            a30 = wasm_f32x4_max(a30, zero), a31 = wasm_f32x4_max(a31, zero);
          }
          float *out = y + ((b * oh + oy) * ow + ox) * co + g;
          store_lanes(out, a00, a01, n);
          if (ox + 1 < ow) store_lanes(out + co, a10, a11, n);
          if (ox + 2 < ow) store_lanes(out + 2 * co, a20, a21, n);
          if (ox + 3 < ow) store_lanes(out + 3 * co, a30, a31, n);
        }
      }
    }
  }
}

EXPORT("conv2d_direct")
void conv2d_direct(const float *x, const float *w, const float *bias, int relu, float *y,
                   int batch, int h, int wd, int c, int fh, int fw, int co, int sh, int sw, int pt,
                   int pl, int oh, int ow, float *xp, float *wp) {
  (void)sh; /* 1 */
  (void)sw; /* 1 */
  /* One channel compiled apart, its tap offsets constant: LeNet's conv1 about 1.6 -> 1.1-1.3 ms. */
  if (c == 1)
    conv2d_direct_body(x, w, bias, relu, y, batch, h, wd, 1, fh, fw, co, pt, pl, oh, ow, xp, wp);
  else
    conv2d_direct_body(x, w, bias, relu, y, batch, h, wd, c, fh, fw, co, pt, pl, oh, ow, xp, wp);
}

/*
 * One Adam step (Kingma & Ba, ICLR 2015) over n parameters, in the exact float32 operations and
 * order of tfjs-core 4.22's AdamOptimizer.applyGradients, so results are bit for bit the same:
 *   m' = m*b1 + g*omb1            v' = v*b2 + (g*g)*omb2
 *   p' = ((m'/c1) / (sqrt(v'/c2) + eps)) * neglr + p
 * with omb = 1 - beta, c = 1 - beta^t (the optimizer's bias corrections) and neglr = -lr, all
 * float32. Writes p', m', v' to out_p, out_m, out_v (which may not alias the inputs).
 */
EXPORT("adam_update")
void adam_update(const float *p, const float *m, const float *v, const float *g, int n, float b1,
                 float omb1, float b2, float omb2, float c1, float c2, float eps, float neglr,
                 float *out_p, float *out_m, float *out_v) {
  const v128_t vb1 = wasm_f32x4_splat(b1), vomb1 = wasm_f32x4_splat(omb1);
  const v128_t vb2 = wasm_f32x4_splat(b2), vomb2 = wasm_f32x4_splat(omb2);
  const v128_t vc1 = wasm_f32x4_splat(c1), vc2 = wasm_f32x4_splat(c2);
  const v128_t veps = wasm_f32x4_splat(eps), vlr = wasm_f32x4_splat(neglr);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t gi = wasm_v128_load(g + i);
    const v128_t nm = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), vb1),
                                     wasm_f32x4_mul(gi, vomb1));
    const v128_t nv = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vb2),
                                     wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), vomb2));
    const v128_t step = wasm_f32x4_div(wasm_f32x4_div(nm, vc1),
                                       wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(nv, vc2)),
                                                      veps));
    wasm_v128_store(out_p + i, wasm_f32x4_add(wasm_f32x4_mul(step, vlr), wasm_v128_load(p + i)));
    wasm_v128_store(out_m + i, nm);
    wasm_v128_store(out_v + i, nv);
  }
  for (; i < n; i++) {
    const float gi = g[i];
    const float nm = m[i] * b1 + gi * omb1;
    const float nv = v[i] * b2 + (gi * gi) * omb2;
    out_p[i] = ((nm / c1) / (__builtin_sqrtf(nv / c2) + eps)) * neglr + p[i];
    out_m[i] = nm;
    out_v[i] = nv;
  }
}

/* Lists the indices of the nonzero entries among d[0..n) in list (branch-free); returns how many. */
static inline int list_nonzero(const float *d, int n, int *list) {
  int nz = 0;
  for (int i = 0; i < n; i++) {
    list[nz] = i;
    nz += d[i] != 0.0f;
  }
  return nz;
}

/* Floats of one row segment of conv2d_input_grad_narrow: fw * c <= NARROW. */
#define NARROW 32

/*
 * Conv2DBackpropInput for narrow filter rows (fw * c <= 32 floats: LeNet's 5x5 filters over 6
 * channels), any stride and padding, no dilation, as a scatter: each dy pixel adds, for each
 * filter row kh, the row segment sum over o of dy[b, oy, ox, o] * w[kh, :, :, o] to
 * dx[b, oy*sh - pt + kh, ox*sw - pl + (0..fw), 0..c), which NHWC keeps contiguous. The segment's
 * 32 floats are 8 SIMD accumulators; zero dy entries (most, behind ReLU and max pooling) are
 * skipped. Scratch wt: fh * o * 32 floats (the filter regrouped by row and output channel, zero
 * padded), buf: 32 floats, nzlist: o ints.
 */
EXPORT("conv2d_input_grad_narrow")
void conv2d_input_grad_narrow(const float *dy, const float *filter, float *dx, int batch, int h,
                              int w, int c, int fh, int fw, int o, int sh, int sw, int pt, int pl,
                              int oh, int ow, float *wt, float *buf, int *nzlist) {
  const int seg = fw * c;
  for (int kh = 0; kh < fh; kh++)
    for (int co = 0; co < o; co++) {
      float *dst = wt + (kh * o + co) * NARROW;
      for (int i = 0; i < NARROW; i++) dst[i] = i < seg ? filter[(kh * seg + i) * o + co] : 0.0f;
    }
  __builtin_memset(dx, 0, sizeof(float) * batch * h * w * c);
  for (int b = 0; b < batch; b++) {
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        const float *d = dy + ((b * oh + oy) * ow + ox) * o;
        const int x0 = ox * sw - pl;
        const int inside = x0 >= 0 && x0 + fw <= w;
        /* The nonzero output channels, listed once per pixel for all fh rows. */
        const int nz = list_nonzero(d, o, nzlist);
        if (nz == 0) continue;
        for (int kh = 0; kh < fh; kh++) {
          const int y = oy * sh - pt + kh;
          if (y < 0 || y >= h) continue;
          v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                 a6 = a0, a7 = a0;
          for (int k = 0; k < nz; k++) {
            const int co = nzlist[k];
            const v128_t s = wasm_f32x4_splat(d[co]);
            const float *wk = wt + (kh * o + co) * NARROW;
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(s, wasm_v128_load(wk)));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(s, wasm_v128_load(wk + 4)));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(s, wasm_v128_load(wk + 8)));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(s, wasm_v128_load(wk + 12)));
            a4 = wasm_f32x4_add(a4, wasm_f32x4_mul(s, wasm_v128_load(wk + 16)));
            a5 = wasm_f32x4_add(a5, wasm_f32x4_mul(s, wasm_v128_load(wk + 20)));
            a6 = wasm_f32x4_add(a6, wasm_f32x4_mul(s, wasm_v128_load(wk + 24)));
            a7 = wasm_f32x4_add(a7, wasm_f32x4_mul(s, wasm_v128_load(wk + 28)));
          }
          wasm_v128_store(buf, a0);
          wasm_v128_store(buf + 4, a1);
          wasm_v128_store(buf + 8, a2);
          wasm_v128_store(buf + 12, a3);
          wasm_v128_store(buf + 16, a4);
          wasm_v128_store(buf + 20, a5);
          wasm_v128_store(buf + 24, a6);
          wasm_v128_store(buf + 28, a7);
          float *row = dx + ((b * h + y) * w + x0) * c;
          if (inside) {
            int i = 0;
            for (; i + 4 <= seg; i += 4)
              wasm_v128_store(row + i, wasm_f32x4_add(wasm_v128_load(row + i),
                                                      wasm_v128_load(buf + i)));
            for (; i < seg; i++) row[i] += buf[i];
          } else {
            for (int kw = 0; kw < fw; kw++) {
              if (x0 + kw < 0 || x0 + kw >= w) continue;
              for (int ch = 0; ch < c; ch++) row[kw * c + ch] += buf[kw * c + ch];
            }
          }
        }
      }
    }
  }
}

/* The number of nonzero floats among x[0..n) (NaN counts as nonzero). */
EXPORT("count_nonzero")
int count_nonzero(const float *x, int n) {
  v128_t zeros = wasm_i32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) zeros = wasm_i32x4_sub(zeros, wasm_f32x4_eq(wasm_v128_load(x + i),
                                                                          wasm_f32x4_splat(0.0f)));
  int z = wasm_i32x4_extract_lane(zeros, 0) + wasm_i32x4_extract_lane(zeros, 1) +
          wasm_i32x4_extract_lane(zeros, 2) + wasm_i32x4_extract_lane(zeros, 3);
  for (; i < n; i++) z += x[i] == 0.0f;
  return n - z;
}

/*
 * Conv2DBackpropFilter (NHWC, no dilation) as a scatter over the nonzero entries of dy, for
 * sparse gradients (behind ReLU and max pooling most are zero): each nonzero dy[b, oy, ox, o]
 * adds dy * x[b, oy*sh - pt + kh, ox*sw - pl + (0..fw), 0..c) to row kh of filter o; NHWC keeps
 * those fw * c floats contiguous. Accumulates in float32 per image in dwt (o * fh * seg4 floats,
 * seg4 = fw * c rounded up to 4), then in float64 in acc (fh * fw * c * o doubles); nzlist: o
 * ints (each pixel's nonzero channels, listed without branches).
 */
EXPORT("conv2d_filter_grad_scatter")
void conv2d_filter_grad_scatter(const float *x, const float *dy, float *dw, int batch, int h,
                                int w, int c, int fh, int fw, int o, int sh, int sw, int pt,
                                int pl, int oh, int ow, float *dwt, double *acc, int *nzlist) {
  const int seg = fw * c, seg4 = (seg + 3) & ~3, nv = seg4 / 4;
  const int taps = fh * seg;
  const float *x_end = x + batch * h * w * c;
  for (int i = 0; i < taps * o; i++) acc[i] = 0.0;
  for (int b = 0; b < batch; b++) {
    for (int i = 0; i < o * fh * seg4; i++) dwt[i] = 0.0f;
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        const float *d = dy + ((b * oh + oy) * ow + ox) * o;
        const int x0 = ox * sw - pl;
        /* Whole 4-float groups stay inside x: the last group may read up to 3 floats past the
         * segment (into the next pixels, discarded lanes), never past the tensor. */
        const int inside = x0 >= 0 && x0 + fw <= w;
        const int nz = list_nonzero(d, o, nzlist);
        for (int k = 0; k < nz; k++) {
          const int co = nzlist[k];
          const float g = d[co];
          const v128_t s = wasm_f32x4_splat(g);
          for (int kh = 0; kh < fh; kh++) {
            const int y = oy * sh - pt + kh;
            if (y < 0 || y >= h) continue;
            const float *row = x + ((b * h + y) * w + x0) * c;
            float *a = dwt + (co * fh + kh) * seg4;
            if (inside && row + seg4 <= x_end) {
              for (int v = 0; v < nv; v++)
                wasm_v128_store(a + 4 * v, wasm_f32x4_add(wasm_v128_load(a + 4 * v),
                                                          wasm_f32x4_mul(s, wasm_v128_load(row + 4 * v))));
            } else {
              for (int kw = 0; kw < fw; kw++) {
                if (x0 + kw < 0 || x0 + kw >= w) continue;
                for (int ch = 0; ch < c; ch++) a[kw * c + ch] += g * row[kw * c + ch];
              }
            }
          }
        }
      }
    }
    for (int co = 0; co < o; co++)
      for (int kh = 0; kh < fh; kh++)
        for (int i = 0; i < seg; i++)
          acc[(kh * seg + i) * o + co] += dwt[(co * fh + kh) * seg4 + i];
  }
  for (int i = 0; i < taps * o; i++) dw[i] = (float)acc[i];
}

/* 1 when every float among x[0..n) is finite (x - x is 0 for finite x, NaN for NaN and inf). */
EXPORT("all_finite")
int all_finite(const float *x, int n) {
  v128_t bad = wasm_i32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    bad = wasm_v128_or(bad, wasm_f32x4_ne(wasm_f32x4_sub(v, v), wasm_f32x4_splat(0.0f)));
  }
  int ok = !wasm_v128_any_true(bad);
  for (; i < n; i++) ok &= (x[i] - x[i]) == 0.0f;
  return ok;
}

/*
 * out[i] = lo <= x[i] <= hi ? dy[i] : 0: the gradient of clip_by_value (ReLU6 is clip(x, 0, 6)),
 * as tfjs-core forms it (where(logicalAnd(x >= lo, x <= hi), dy, zerosLike(dy))), in one pass
 * instead of five full-size kernels; a NaN in x compares false, so its gradient is 0 there too.
 */
EXPORT("clip_grad")
void clip_grad(const float *x, const float *dy, int n, float lo, float hi, float *out) {
  const v128_t vlo = wasm_f32x4_splat(lo), vhi = wasm_f32x4_splat(hi);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t keep = wasm_v128_and(wasm_f32x4_ge(v, vlo), wasm_f32x4_le(v, vhi));
    wasm_v128_store(out + i, wasm_v128_and(wasm_v128_load(dy + i), keep));
  }
  for (; i < n; i++) out[i] = (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f;
}

/*
 * out[i] = dy[i]·step(x[i]), step(x) = x > 0 ? 1 : 0 (NaN for a NaN x): ReLU's gradient as
 * tfjs-core forms it (mul(dy, step(x))), bit for bit (a product with 0 keeps dy's sign and turns
 * ±Infinity into NaN), in one pass instead of two full-size kernels.
 */
EXPORT("relu_grad")
void relu_grad(const float *x, const float *dy, int n, float *out) {
  const v128_t one = wasm_f32x4_splat(1.0f), zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    v128_t step = wasm_v128_bitselect(one, zero, wasm_f32x4_gt(v, zero));
    step = wasm_v128_bitselect(v, step, wasm_f32x4_ne(v, v));
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(dy + i), step));
  }
  for (; i < n; i++) {
    const float step = x[i] != x[i] ? x[i] : (x[i] > 0.0f ? 1.0f : 0.0f);
    out[i] = dy[i] * step;
  }
}

/*
 * out[i] = x[i] > hi ? 0 : dy[i]·step(x[i]): the gradient of clip(relu(x), 0, hi) (Keras's ReLU
 * layer with maxValue, ReLU6 at hi = 6) as tfjs-core forms it through ClipByValue's gradient
 * (0 where relu(x) > hi) and then Relu's (mul(dy, step(x))), bit for bit (a NaN x gives NaN, and
 * x <= 0 keeps dy's sign in the zero), in one pass instead of two full-size kernels.
 */
EXPORT("relu_clip_grad")
void relu_clip_grad(const float *x, const float *dy, int n, float hi, float *out) {
  const v128_t one = wasm_f32x4_splat(1.0f), zero = wasm_f32x4_splat(0.0f);
  const v128_t vhi = wasm_f32x4_splat(hi);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    v128_t step = wasm_v128_bitselect(one, zero, wasm_f32x4_gt(v, zero));
    step = wasm_v128_bitselect(v, step, wasm_f32x4_ne(v, v));
    const v128_t product = wasm_f32x4_mul(wasm_v128_load(dy + i), step);
    wasm_v128_store(out + i, wasm_v128_andnot(product, wasm_f32x4_gt(v, vhi)));
  }
  for (; i < n; i++) {
    const float step = x[i] != x[i] ? x[i] : (x[i] > 0.0f ? 1.0f : 0.0f);
    out[i] = x[i] > hi ? 0.0f : dy[i] * step;
  }
}
