/*
 * 3×3 stride-1 convolutions by Winograd's minimal filtering algorithm F(4×4, 3×3) (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", CVPR 2016), float32, NHWC, in place on
 * tfjs-backend-wasm's heap (linked into heap-kernels.wasm: no static data, no shadow stack, so no
 * local arrays; scratch comes from the caller).
 *
 * Each 4×4 output tile is Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A over a 6×6 input tile d: 36
 * multiplies per tile and channel pair where the direct convolution needs 144. With the 36
 * transformed filters U_ξ [ci, co] and a block of transformed input tiles V_ξ [t, ci], the sum
 * over ci is one matrix product M_ξ = V_ξ · U_ξ per position ξ of the 6×6 tile, run by a 6×8
 * register-tile SIMD kernel as in gemm.c. Interpolation points 0, ±1, ±2 and ∞ (the matrices of
 * the paper); the filter transform runs in float64.
 *
 * The same routine gives the input gradient of a 3×3 stride-1 convolution: a convolution of dy
 * with the filter rotated by 180° and its channel axes swapped, padded by 2 − pad.
 */
#include <wasm_simd128.h>

#ifndef EXPORT
#define EXPORT(name) __attribute__((export_name(name)))
#endif

/* Tiles per block: 4 rows of the 6-tile micro-kernel; the block's V and M stay in L2. */
#define WINO_BLOCK 24

/* The 1D filter transform G·(a, b, c) of F(4, 3), into o0..o5. */
#define G_ROW(a, b, c, o0, o1, o2, o3, o4, o5)                                                   \
  do {                                                                                           \
    o0 = (a) * 0.25;                                                                             \
    o1 = -((a) + (b) + (c)) / 6.0;                                                               \
    o2 = -((a) - (b) + (c)) / 6.0;                                                               \
    o3 = (a) / 24.0 + (b) / 12.0 + (c) / 6.0;                                                    \
    o4 = (a) / 24.0 - (b) / 12.0 + (c) / 6.0;                                                    \
    o5 = (c);                                                                                    \
  } while (0)

/*
 * u[ξ·ci_n·co_n + ci·co_n + co] = (G g Gᵀ)[ξ] with ξ = 6i + j (i along the filter's rows) for the
 * 3×3 filter g of each channel pair of the filter w [3, 3, c, k]: g = w[·, ·, ci, co]
 * (ci_n = c, co_n = k) or, with flip, the input gradient's filter g = w[2 − ·, 2 − ·, co, ci]
 * (ci_n = k, co_n = c).
 */
EXPORT("winograd_filter")
void winograd_filter(const float *w, int c, int k, int flip, float *u) {
  const int ci_n = flip ? k : c, co_n = flip ? c : k;
  const int plane = ci_n * co_n;
  for (int ci = 0; ci < ci_n; ci++) {
    for (int co = 0; co < co_n; co++) {
      /* g[fy][fx] at w + (fy·3 + fx)·c·k + (flip ? co·k + ci : ci·k + co), reversed by flip. */
      const float *g = w + (flip ? co * k + ci : ci * k + co);
      const int step = c * k;
#define GV(fy, fx) ((double)g[(flip ? (2 - (fy)) * 3 + (2 - (fx)) : (fy) * 3 + (fx)) * step])
      double t00, t10, t20, t30, t40, t50, t01, t11, t21, t31, t41, t51, t02, t12, t22, t32, t42,
          t52;
      G_ROW(GV(0, 0), GV(1, 0), GV(2, 0), t00, t10, t20, t30, t40, t50);
      G_ROW(GV(0, 1), GV(1, 1), GV(2, 1), t01, t11, t21, t31, t41, t51);
      G_ROW(GV(0, 2), GV(1, 2), GV(2, 2), t02, t12, t22, t32, t42, t52);
#undef GV
      float *o = u + ci * co_n + co;
#define U_ROW(i, a, b, cc)                                                                       \
  do {                                                                                           \
    double r0, r1, r2, r3, r4, r5;                                                               \
    G_ROW(a, b, cc, r0, r1, r2, r3, r4, r5);                                                     \
    o[(6 * (i) + 0) * plane] = (float)r0;                                                        \
    o[(6 * (i) + 1) * plane] = (float)r1;                                                        \
    o[(6 * (i) + 2) * plane] = (float)r2;                                                        \
    o[(6 * (i) + 3) * plane] = (float)r3;                                                        \
    o[(6 * (i) + 4) * plane] = (float)r4;                                                        \
    o[(6 * (i) + 5) * plane] = (float)r5;                                                        \
  } while (0)
      U_ROW(0, t00, t01, t02);
      U_ROW(1, t10, t11, t12);
      U_ROW(2, t20, t21, t22);
      U_ROW(3, t30, t31, t32);
      U_ROW(4, t40, t41, t42);
      U_ROW(5, t50, t51, t52);
#undef U_ROW
    }
  }
}

/* The 1D input transform Bᵀ·(d0..d5) of F(4, 3), 4 channels per lane group. */
#define BT_ROW(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5)                                   \
  do {                                                                                           \
    const v128_t four = wasm_f32x4_splat(4.0f), five = wasm_f32x4_splat(5.0f);                   \
    const v128_t two = wasm_f32x4_splat(2.0f);                                                   \
    o0 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d0), wasm_f32x4_mul(five, d2)), d4); \
    o1 = wasm_f32x4_sub(wasm_f32x4_add(d3, d4), wasm_f32x4_mul(four, wasm_f32x4_add(d1, d2)));   \
    o2 = wasm_f32x4_add(wasm_f32x4_sub(d4, d3), wasm_f32x4_mul(four, wasm_f32x4_sub(d1, d2)));   \
    o3 = wasm_f32x4_add(wasm_f32x4_sub(d4, d2), wasm_f32x4_mul(two, wasm_f32x4_sub(d3, d1)));    \
    o4 = wasm_f32x4_sub(wasm_f32x4_sub(d4, d2), wasm_f32x4_mul(two, wasm_f32x4_sub(d3, d1)));    \
    o5 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d1), wasm_f32x4_mul(five, d3)), d5); \
  } while (0)

/* The 1D output transform Aᵀ·(m0..m5) of F(4, 3). */
#define AT_ROW(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3)                                           \
  do {                                                                                           \
    const v128_t s12 = wasm_f32x4_add(m1, m2), d12 = wasm_f32x4_sub(m1, m2);                     \
    const v128_t s34 = wasm_f32x4_add(m3, m4), d34 = wasm_f32x4_sub(m3, m4);                     \
    o0 = wasm_f32x4_add(wasm_f32x4_add(m0, s12), s34);                                           \
    o1 = wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(2.0f), d34));                       \
    o2 = wasm_f32x4_add(s12, wasm_f32x4_mul(wasm_f32x4_splat(4.0f), s34));                       \
    o3 = wasm_f32x4_add(wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(8.0f), d34)), m5);   \
  } while (0)

/* Stores o0..o5 at p, p + step, ..., p + 5 step (floats). */
static inline void store6(float *p, int step, v128_t o0, v128_t o1, v128_t o2, v128_t o3,
                          v128_t o4, v128_t o5) {
  wasm_v128_store(p, o0);
  wasm_v128_store(p + step, o1);
  wasm_v128_store(p + 2 * step, o2);
  wasm_v128_store(p + 3 * step, o3);
  wasm_v128_store(p + 4 * step, o4);
  wasm_v128_store(p + 5 * step, o5);
}

static inline v128_t load_or_zero(const float *p, int ok) {
  return ok ? wasm_v128_load(p) : wasm_f32x4_splat(0.0f);
}

/*
 * V_ξ[t, c..c+4) for the tiles t of a block: Bᵀ d B of the 6×6 input patch at (y0, x0) of image
 * x (h × w × ci_n), zero outside it. tmp: 36 v128 of scratch.
 */
static void input_tile(const float *x, int h, int w, int ci_n, int y0, int x0, float *v, int ts,
                       float *tmp) {
  const int xs = ci_n;
  int cok0 = (unsigned)x0 < (unsigned)w, cok1 = (unsigned)(x0 + 1) < (unsigned)w;
  int cok2 = (unsigned)(x0 + 2) < (unsigned)w, cok3 = (unsigned)(x0 + 3) < (unsigned)w;
  int cok4 = (unsigned)(x0 + 4) < (unsigned)w, cok5 = (unsigned)(x0 + 5) < (unsigned)w;
  for (int c = 0; c < ci_n; c += 4) {
    for (int r = 0; r < 6; r++) {
      const int y = y0 + r;
      const int rok = (unsigned)y < (unsigned)h;
      const float *p = x + ((y * w) + x0) * xs + c;
      v128_t d0 = load_or_zero(p, rok & cok0), d1 = load_or_zero(p + xs, rok & cok1);
      v128_t d2 = load_or_zero(p + 2 * xs, rok & cok2), d3 = load_or_zero(p + 3 * xs, rok & cok3);
      v128_t d4 = load_or_zero(p + 4 * xs, rok & cok4), d5 = load_or_zero(p + 5 * xs, rok & cok5);
      v128_t o0, o1, o2, o3, o4, o5;
      BT_ROW(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5);
      store6(tmp + 24 * r, 4, o0, o1, o2, o3, o4, o5);
    }
    for (int j = 0; j < 6; j++) {
      const float *q = tmp + 4 * j;
      v128_t o0, o1, o2, o3, o4, o5;
      BT_ROW(wasm_v128_load(q), wasm_v128_load(q + 24), wasm_v128_load(q + 48),
             wasm_v128_load(q + 72), wasm_v128_load(q + 96), wasm_v128_load(q + 120), o0, o1, o2,
             o3, o4, o5);
      store6(v + j * ts + c, 6 * ts, o0, o1, o2, o3, o4, o5);
    }
  }
}

/*
 * y[oy0 + p, ox0 + q, k..k+4) = (Aᵀ M A)[p, q] (+ bias, ReLU) for p, q < 4 inside oh × ow, from
 * M_ξ[t, ·] at m (ξ stride ms). tmp: 24 v128 of scratch.
 */
static void output_tile(const float *m, int ms, int co_n, const float *bias, int relu, float *y,
                        int oh, int ow, int oy0, int ox0, float *tmp) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int k = 0; k < co_n; k += 4) {
    for (int i = 0; i < 6; i++) {
      const float *p = m + 6 * i * ms + k;
      v128_t o0, o1, o2, o3;
      AT_ROW(wasm_v128_load(p), wasm_v128_load(p + ms), wasm_v128_load(p + 2 * ms),
             wasm_v128_load(p + 3 * ms), wasm_v128_load(p + 4 * ms), wasm_v128_load(p + 5 * ms),
             o0, o1, o2, o3);
      float *q = tmp + 16 * i;
      wasm_v128_store(q, o0);
      wasm_v128_store(q + 4, o1);
      wasm_v128_store(q + 8, o2);
      wasm_v128_store(q + 12, o3);
    }
    const v128_t b = bias ? wasm_v128_load(bias + k) : zero;
    for (int qx = 0; qx < 4; qx++) {
      const float *q = tmp + 4 * qx;
      v128_t o0, o1, o2, o3;
      AT_ROW(wasm_v128_load(q), wasm_v128_load(q + 16), wasm_v128_load(q + 32),
             wasm_v128_load(q + 48), wasm_v128_load(q + 64), wasm_v128_load(q + 80), o0, o1, o2,
             o3);
      const int x = ox0 + qx;
      if (x >= ow) break;
      float *out = y + ((oy0 * ow) + x) * co_n + k;
      const int rs = ow * co_n;
      o0 = wasm_f32x4_add(o0, b);
      o1 = wasm_f32x4_add(o1, b);
      o2 = wasm_f32x4_add(o2, b);
      o3 = wasm_f32x4_add(o3, b);
      if (relu) {
        o0 = wasm_f32x4_max(o0, zero);
        o1 = wasm_f32x4_max(o1, zero);
        o2 = wasm_f32x4_max(o2, zero);
        o3 = wasm_f32x4_max(o3, zero);
      }
      wasm_v128_store(out, o0);
      if (oy0 + 1 < oh) wasm_v128_store(out + rs, o1);
      if (oy0 + 2 < oh) wasm_v128_store(out + 2 * rs, o2);
      if (oy0 + 3 < oh) wasm_v128_store(out + 3 * rs, o3);
    }
  }
}

#if !defined(__wasm__) && (defined(__AVX512F__) || defined(__AVX2__))
/*
 * The native build's wider register tiles (native/binding.gyp): 6 rows × 16 columns in one 512-bit
 * vector per row (AVX-512), or 6 × 8 in one 256-bit vector (AVX2), where WebAssembly's 128-bit
 * SIMD needs two or four. Each output is the same sequence of float32 multiplies and adds over ci
 * as in the 6×8 tile below (no fused multiply-add), so the results are the same bits.
 */
#if defined(__AVX512F__)
#define WIDE 16
#else
#define WIDE 8
#endif
typedef float wide_t __attribute__((vector_size(4 * WIDE)));

static inline wide_t wide_load(const float *p) {
  wide_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void wide_store(float *p, wide_t v) { memcpy(p, &v, sizeof v); }

/* Columns [j0, co_n) of tile_product's rows r..r+5, WIDE at a time; returns the first column not
 * done (co_n minus a remainder under WIDE). */
static int tile_product_wide(const float *a, const float *u, float *o, int ci_n, int co_n) {
  int j = 0;
  for (; j + WIDE <= co_n; j += WIDE) {
    wide_t c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0};
    const float *b = u + j;
    for (int ci = 0; ci < ci_n; ci++) {
      const wide_t bv = wide_load(b);
      b += co_n;
      c0 += a[ci] * bv;
      c1 += a[ci_n + ci] * bv;
      c2 += a[2 * ci_n + ci] * bv;
      c3 += a[3 * ci_n + ci] * bv;
      c4 += a[4 * ci_n + ci] * bv;
      c5 += a[5 * ci_n + ci] * bv;
    }
    wide_store(o + j, c0);
    wide_store(o + co_n + j, c1);
    wide_store(o + 2 * co_n + j, c2);
    wide_store(o + 3 * co_n + j, c3);
    wide_store(o + 4 * co_n + j, c4);
    wide_store(o + 5 * co_n + j, c5);
  }
  return j;
}
#endif

/* m[r·co_n + j] = Σ_ci v[r·ci_n + ci]·u[ci·co_n + j] for r < rows (a multiple of 6), j < co_n
 * (a multiple of 8): a 6×8 register tile of 12 f32x4 accumulators. */
static void tile_product(const float *v, const float *u, float *m, int rows, int ci_n, int co_n) {
#if !defined(__wasm__) && (defined(__AVX512F__) || defined(__AVX2__))
  if (co_n % WIDE == 0) {
    for (int r = 0; r < rows; r += 6) tile_product_wide(v + r * ci_n, u, m + r * co_n, ci_n, co_n);
    return;
  }
#endif
  for (int r = 0; r < rows; r += 6) {
    const float *a = v + r * ci_n;
    for (int j = 0; j < co_n; j += 8) {
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
      v128_t c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
      const float *b = u + j;
      for (int ci = 0; ci < ci_n; ci++) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        b += co_n;
#define FMA_ROW(rr, x0, x1)                                                                      \
  do {                                                                                           \
    const v128_t ar = wasm_f32x4_splat(a[(rr) * ci_n + ci]);                                     \
    x0 = wasm_f32x4_add(x0, wasm_f32x4_mul(ar, b0));                                             \
    x1 = wasm_f32x4_add(x1, wasm_f32x4_mul(ar, b1));                                             \
  } while (0)
        FMA_ROW(0, c00, c01);
        FMA_ROW(1, c10, c11);
        FMA_ROW(2, c20, c21);
        FMA_ROW(3, c30, c31);
        FMA_ROW(4, c40, c41);
        FMA_ROW(5, c50, c51);
#undef FMA_ROW
      }
      float *o = m + r * co_n + j;
      wasm_v128_store(o, c00);
      wasm_v128_store(o + 4, c01);
      wasm_v128_store(o + co_n, c10);
      wasm_v128_store(o + co_n + 4, c11);
      wasm_v128_store(o + 2 * co_n, c20);
      wasm_v128_store(o + 2 * co_n + 4, c21);
      wasm_v128_store(o + 3 * co_n, c30);
      wasm_v128_store(o + 3 * co_n + 4, c31);
      wasm_v128_store(o + 4 * co_n, c40);
      wasm_v128_store(o + 4 * co_n + 4, c41);
      wasm_v128_store(o + 5 * co_n, c50);
      wasm_v128_store(o + 5 * co_n + 4, c51);
    }
  }
}

/*
 * y [batch, oh, ow, co_n] = the 3×3 stride-1 convolution of x [batch, h, w, ci_n] (zero outside,
 * output pixel (oy, ox) reading x from (oy − pt, ox − pl)) with the filters u transformed by
 * winograd_filter, plus bias [co_n] (or 0) and ReLU if relu. ci_n a multiple of 4, co_n of 8.
 * Scratch: v and mm of 36·WINO_BLOCK·ci_n and 36·WINO_BLOCK·co_n floats, tmp of 144 floats.
 */
EXPORT("winograd_conv3x3")
void winograd_conv3x3(const float *x, const float *u, const float *bias, int relu, float *y,
                      int batch, int h, int w, int ci_n, int co_n, int pt, int pl, int oh, int ow,
                      float *v, float *mm, float *tmp) {
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4;
  const int per_image = th * tw, total = batch * per_image;
  const int vs = WINO_BLOCK * ci_n, ms = WINO_BLOCK * co_n;
  for (int t0 = 0; t0 < total; t0 += WINO_BLOCK) {
    const int n = total - t0 < WINO_BLOCK ? total - t0 : WINO_BLOCK;
    const int rows = (n + 5) / 6 * 6;
    for (int t = 0; t < rows; t++) {
      if (t < n) {
        const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
        const int ty = in_image / tw, tx = in_image % tw;
        input_tile(x + b * h * w * ci_n, h, w, ci_n, 4 * ty - pt, 4 * tx - pl, v + t * ci_n, vs,
                   tmp);
      } else {
        for (int xi = 0; xi < 36; xi++)
          for (int c = 0; c < ci_n; c += 4)
            wasm_v128_store(v + xi * vs + t * ci_n + c, wasm_f32x4_splat(0.0f));
      }
    }
    for (int xi = 0; xi < 36; xi++)
      tile_product(v + xi * vs, u + xi * ci_n * co_n, mm + xi * ms, rows, ci_n, co_n);
    for (int t = 0; t < n; t++) {
      const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
      const int ty = in_image / tw, tx = in_image % tw;
      output_tile(mm + t * co_n, ms, co_n, bias, relu, y + b * oh * ow * co_n, oh, ow, 4 * ty,
                  4 * tx, tmp);
    }
  }
}

/* The 1D transform A·(y0..y3) of F(4, 3)'s output tile (the adjoint of Aᵀ), into o0..o5. */
#define A_ROW(y0, y1, y2, y3, o0, o1, o2, o3, o4, o5)                                            \
  do {                                                                                           \
    const v128_t s02 = wasm_f32x4_add(y0, y2), s13 = wasm_f32x4_add(y1, y3);                     \
    const v128_t q02 = wasm_f32x4_add(y0, wasm_f32x4_mul(wasm_f32x4_splat(4.0f), y2));           \
    const v128_t q13 = wasm_f32x4_mul(                                                           \
        wasm_f32x4_splat(2.0f), wasm_f32x4_add(y1, wasm_f32x4_mul(wasm_f32x4_splat(4.0f), y3))); \
    o0 = y0;                                                                                     \
    o1 = wasm_f32x4_add(s02, s13);                                                               \
    o2 = wasm_f32x4_sub(s02, s13);                                                               \
    o3 = wasm_f32x4_add(q02, q13);                                                               \
    o4 = wasm_f32x4_sub(q02, q13);                                                               \
    o5 = y3;                                                                                     \
  } while (0)

/*
 * Z_ξ[t, k..k+4) for a block's tile t: A dY Aᵀ of the 4×4 tile of dy (oh × ow × co_n) at
 * (oy0, ox0), zero outside it. tmp: 36 v128 of scratch.
 */
static void grad_tile(const float *dy, int oh, int ow, int co_n, int oy0, int ox0, float *z, int zs,
                      float *tmp) {
  const int cok1 = ox0 + 1 < ow, cok2 = ox0 + 2 < ow, cok3 = ox0 + 3 < ow;
  for (int k = 0; k < co_n; k += 4) {
    for (int r = 0; r < 4; r++) {
      const int rok = oy0 + r < oh;
      const float *p = dy + ((oy0 + r) * ow + ox0) * co_n + k;
      v128_t o0, o1, o2, o3, o4, o5;
      A_ROW(load_or_zero(p, rok), load_or_zero(p + co_n, rok & cok1),
            load_or_zero(p + 2 * co_n, rok & cok2), load_or_zero(p + 3 * co_n, rok & cok3), o0,
            o1, o2, o3, o4, o5);
      store6(tmp + 24 * r, 4, o0, o1, o2, o3, o4, o5);
    }
    for (int j = 0; j < 6; j++) {
      const float *q = tmp + 4 * j;
      v128_t o0, o1, o2, o3, o4, o5;
      A_ROW(wasm_v128_load(q), wasm_v128_load(q + 24), wasm_v128_load(q + 48),
            wasm_v128_load(q + 72), o0, o1, o2, o3, o4, o5);
      store6(z + j * zs + k, 6 * zs, o0, o1, o2, o3, o4, o5);
    }
  }
}

/* Adds the 4 lanes of a to the float64 s[0..4). */
static inline void add_f64(double *s, v128_t a) {
  wasm_v128_store(s, wasm_f64x2_add(wasm_v128_load(s), wasm_f64x2_promote_low_f32x4(a)));
  wasm_v128_store(s + 2, wasm_f64x2_add(wasm_v128_load(s + 2),
                                        wasm_f64x2_promote_low_f32x4(
                                            wasm_i32x4_shuffle(a, a, 2, 3, 2, 3))));
}

/* s[ci·co_n + j] += Σ_{t < rows} v[t·ci_n + ci]·z[t·co_n + j] in float64, for ci < ci_n (a
 * multiple of 4), j < co_n (of 8): a 4×8 register tile summed in float32 over the block's rows. */
static void tile_product_t(const float *v, const float *z, double *s, int rows, int ci_n,
                           int co_n) {
  for (int ci = 0; ci < ci_n; ci += 4) {
    for (int j = 0; j < co_n; j += 8) {
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
      v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const float *a = v + ci;
      const float *b = z + j;
      for (int t = 0; t < rows; t++) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        b += co_n;
#define FMA_COL(rr, x0, x1)                                                                      \
  do {                                                                                           \
    const v128_t ar = wasm_f32x4_splat(a[rr]);                                                   \
    x0 = wasm_f32x4_add(x0, wasm_f32x4_mul(ar, b0));                                             \
    x1 = wasm_f32x4_add(x1, wasm_f32x4_mul(ar, b1));                                             \
  } while (0)
        FMA_COL(0, c00, c01);
        FMA_COL(1, c10, c11);
        FMA_COL(2, c20, c21);
        FMA_COL(3, c30, c31);
#undef FMA_COL
        a += ci_n;
      }
      double *o = s + ci * co_n + j;
      add_f64(o, c00);
      add_f64(o + 4, c01);
      add_f64(o + co_n, c10);
      add_f64(o + co_n + 4, c11);
      add_f64(o + 2 * co_n, c20);
      add_f64(o + 2 * co_n + 4, c21);
      add_f64(o + 3 * co_n, c30);
      add_f64(o + 3 * co_n + 4, c31);
    }
  }
}

/* The 1D transform Gᵀ·(s0..s5) of F(4, 3)'s filter gradient, into o0..o2. */
#define GT_ROW(s0, s1, s2, s3, s4, s5, o0, o1, o2)                                               \
  do {                                                                                           \
    o0 = (s0) / 4.0 - ((s1) + (s2)) / 6.0 + ((s3) + (s4)) / 24.0;                                \
    o1 = ((s2) - (s1)) / 6.0 + ((s3) - (s4)) / 12.0;                                             \
    o2 = ((s3) + (s4)) / 6.0 - ((s1) + (s2)) / 6.0 + (s5);                                       \
  } while (0)

/*
 * dw [3, 3, ci_n, co_n], the filter gradient of the 3×3 stride-1 convolution of
 * x [batch, h, w, ci_n] (padding pt, pl) with output gradient dy [batch, oh, ow, co_n], by
 * F(4×4, 3×3) (the adjoint of winograd_conv3x3): dW = Gᵀ [Σ_t (Bᵀ d_t B) ⊙ (A dY_t Aᵀ)] G over all
 * 4×4 output tiles t, the sum a product per position ξ accumulated in float64. ci_n a multiple
 * of 4, co_n of 8. Scratch: v and z of 36·WINO_BLOCK·ci_n and ·co_n floats, s of 36·ci_n·co_n
 * doubles, tmp of 144 floats.
 */
EXPORT("winograd_filter_grad3x3")
void winograd_filter_grad3x3(const float *x, const float *dy, float *dw, int batch, int h, int w,
                             int ci_n, int co_n, int pt, int pl, int oh, int ow, float *v, float *z,
                             double *s, float *tmp) {
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4;
  const int per_image = th * tw, total = batch * per_image;
  const int vs = WINO_BLOCK * ci_n, zs = WINO_BLOCK * co_n, plane = ci_n * co_n;
  for (int i = 0; i < 36 * plane; i++) s[i] = 0.0;
  for (int t0 = 0; t0 < total; t0 += WINO_BLOCK) {
    const int n = total - t0 < WINO_BLOCK ? total - t0 : WINO_BLOCK;
    for (int t = 0; t < n; t++) {
      const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
      const int ty = in_image / tw, tx = in_image % tw;
      input_tile(x + b * h * w * ci_n, h, w, ci_n, 4 * ty - pt, 4 * tx - pl, v + t * ci_n, vs,
                 tmp);
      grad_tile(dy + b * oh * ow * co_n, oh, ow, co_n, 4 * ty, 4 * tx, z + t * co_n, zs, tmp);
    }
    for (int xi = 0; xi < 36; xi++)
      tile_product_t(v + xi * vs, z + xi * zs, s + xi * plane, n, ci_n, co_n);
  }
  for (int p = 0; p < plane; p++) {
    const double *q = s + p;
#define SV(i, j) q[(6 * (i) + (j)) * plane]
    /* Along the rows i, then the columns j. */
    double r00, r10, r20, r01, r11, r21, r02, r12, r22, r03, r13, r23, r04, r14, r24, r05, r15, r25;
    GT_ROW(SV(0, 0), SV(1, 0), SV(2, 0), SV(3, 0), SV(4, 0), SV(5, 0), r00, r10, r20);
    GT_ROW(SV(0, 1), SV(1, 1), SV(2, 1), SV(3, 1), SV(4, 1), SV(5, 1), r01, r11, r21);
    GT_ROW(SV(0, 2), SV(1, 2), SV(2, 2), SV(3, 2), SV(4, 2), SV(5, 2), r02, r12, r22);
    GT_ROW(SV(0, 3), SV(1, 3), SV(2, 3), SV(3, 3), SV(4, 3), SV(5, 3), r03, r13, r23);
    GT_ROW(SV(0, 4), SV(1, 4), SV(2, 4), SV(3, 4), SV(4, 4), SV(5, 4), r04, r14, r24);
    GT_ROW(SV(0, 5), SV(1, 5), SV(2, 5), SV(3, 5), SV(4, 5), SV(5, 5), r05, r15, r25);
#undef SV
    double o0, o1, o2;
    float *out = dw + p;
    GT_ROW(r00, r01, r02, r03, r04, r05, o0, o1, o2);
    out[0] = (float)o0;
    out[plane] = (float)o1;
    out[2 * plane] = (float)o2;
    GT_ROW(r10, r11, r12, r13, r14, r15, o0, o1, o2);
    out[3 * plane] = (float)o0;
    out[4 * plane] = (float)o1;
    out[5 * plane] = (float)o2;
    GT_ROW(r20, r21, r22, r23, r24, r25, o0, o1, o2);
    out[6 * plane] = (float)o0;
    out[7 * plane] = (float)o1;
    out[8 * plane] = (float)o2;
  }
}
