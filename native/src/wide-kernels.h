/*
 * Winograd F(4×4, 3×3) 3×3 stride-1 convolutions and their filter gradient, and pointwise (1×1,
 * stride 1) convolutions with both their gradients, written for the native build's wide vectors: WIDE channels per vector (16 under AVX-512, 8 under AVX2) in the
 * input, output and gradient transforms as well as in the products, which use fused
 * multiply-adds. Included by wide.c once per width, with WIDE, TARGET (a GCC target attribute
 * string) and SUFFIX defined; every function carries the target attribute, so the file compiles
 * with the x86-64 baseline flags and the addon loads on any x86-64 (addon.c calls a width only
 * where __builtin_cpu_supports says the CPU has it).
 *
 * Same algorithm and operand layouts as wasm/winograd.c (see there: Lavin & Gray, CVPR 2016), but
 * the order of float32 operations differs (fused multiply-adds, wider register tiles), so results
 * agree with the WebAssembly kernels within float32 rounding, not bit for bit
 * (tests/unit/native-kernels.test.ts states the tolerance). Scratch is the thread's own (wide_scratch).
 */

#define VF CC_PASTE(vf, WIDE)
#define VFU CC_PASTE(vfu, WIDE)
#define VD CC_PASTE(vd, WIDE)
#define VDU CC_PASTE(vdu, WIDE)
#define FN(name) CC_PASTE(name, SUFFIX)
#define TGT __attribute__((target(TARGET)))
#define INL static inline __attribute__((always_inline, target(TARGET)))

typedef float VF __attribute__((vector_size(4 * WIDE)));
typedef float VFU __attribute__((vector_size(4 * WIDE), aligned(4), may_alias));
typedef double VD __attribute__((vector_size(8 * WIDE)));
typedef double VDU __attribute__((vector_size(8 * WIDE), aligned(8), may_alias));

#define LD(p) ((VF)(*(const VFU *)(const void *)(p)))
#define ST(p, v) (*(VFU *)(void *)(p) = (v))

#if WIDE == 16
#define FMADD(a, b, c) ((VF)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define VMAX(a, b) ((VF)_mm512_max_ps((__m512)(a), (__m512)(b)))
#define SPLAT(s) ((VF)_mm512_set1_ps((float)(s)))
#else
#define FMADD(a, b, c) ((VF)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define VMAX(a, b) ((VF)_mm256_max_ps((__m256)(a), (__m256)(b)))
#define SPLAT(s) ((VF)_mm256_set1_ps((float)(s)))
#endif

/* 1D input transform Bᵀ·(d0..d5) into o[0..5]. */
INL void FN(bt_row)(VF d0, VF d1, VF d2, VF d3, VF d4, VF d5, VF *o) {
  const VF four = SPLAT(4.0f), five = SPLAT(5.0f), two = SPLAT(2.0f);
  o[0] = FMADD(four, d0, d4 - five * d2);
  o[1] = (d3 + d4) - four * (d1 + d2);
  o[2] = FMADD(four, d1 - d2, d4 - d3);
  const VF a = d4 - d2, b = two * (d3 - d1);
  o[3] = a + b;
  o[4] = a - b;
  o[5] = FMADD(four, d1, d5 - five * d3);
}

/* 1D output transform Aᵀ·(m0..m5) into o[0..3]. */
INL void FN(at_row)(VF m0, VF m1, VF m2, VF m3, VF m4, VF m5, VF *o) {
  const VF s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  o[0] = m0 + s12 + s34;
  o[1] = FMADD(SPLAT(2.0f), d34, d12);
  o[2] = FMADD(SPLAT(4.0f), s34, s12);
  o[3] = FMADD(SPLAT(8.0f), d34, d12) + m5;
}

/* 1D transform A·(y0..y3) (the adjoint of Aᵀ) into o[0..5]. */
INL void FN(a_row)(VF y0, VF y1, VF y2, VF y3, VF *o) {
  const VF s02 = y0 + y2, s13 = y1 + y3;
  const VF q02 = FMADD(SPLAT(4.0f), y2, y0);
  const VF q13 = SPLAT(2.0f) * FMADD(SPLAT(4.0f), y3, y1);
  o[0] = y0;
  o[1] = s02 + s13;
  o[2] = s02 - s13;
  o[3] = q02 + q13;
  o[4] = q02 - q13;
  o[5] = y3;
}

/* V_ξ[t, ·] at v (ξ stride vs) = Bᵀ d B of the 6×6 patch of image x (h × w × ci_n) at (y0, x0),
 * zero outside it. */
INL void FN(input_tile)(const float *x, int h, int w, int ci_n, int y0, int x0, float *v, int vs) {
  int cok[6];
  for (int j = 0; j < 6; j++) cok[j] = (unsigned)(x0 + j) < (unsigned)w;
  const int interior = y0 >= 0 && y0 + 6 <= h && x0 >= 0 && x0 + 6 <= w;
  const VF zero = SPLAT(0.0f);
  for (int c = 0; c < ci_n; c += WIDE) {
    VF t[6][6];
    for (int r = 0; r < 6; r++) {
      const int y = y0 + r;
      const int rok = (unsigned)y < (unsigned)h;
      const float *p = x + ((long)y * w + x0) * ci_n + c;
      VF d[6];
      if (interior) {
        for (int j = 0; j < 6; j++) d[j] = LD(p + j * ci_n);
      } else {
        for (int j = 0; j < 6; j++) d[j] = (rok && cok[j]) ? LD(p + j * ci_n) : zero;
      }
      FN(bt_row)(d[0], d[1], d[2], d[3], d[4], d[5], t[r]);
    }
    for (int j = 0; j < 6; j++) {
      VF o[6];
      FN(bt_row)(t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j], o);
      for (int i = 0; i < 6; i++) ST(v + (6 * i + j) * vs + c, o[i]);
    }
  }
}

/* y[oy0 + p, ox0 + q, ·] = (Aᵀ M A)[p, q] (+ bias, ReLU) inside oh × ow, from M_ξ[t, ·] at m. */
INL void FN(output_tile)(const float *m, int ms, int co_n, const float *bias, int relu, float *y,
                         int oh, int ow, int oy0, int ox0) {
  const VF zero = SPLAT(0.0f);
  const int rs = ow * co_n;
  for (int k = 0; k < co_n; k += WIDE) {
    VF t[6][4];
    for (int i = 0; i < 6; i++) {
      const float *p = m + 6 * i * ms + k;
      FN(at_row)(LD(p), LD(p + ms), LD(p + 2 * ms), LD(p + 3 * ms), LD(p + 4 * ms),
                 LD(p + 5 * ms), t[i]);
    }
    const VF b = bias ? LD(bias + k) : zero;
    for (int qx = 0; qx < 4; qx++) {
      const int xx = ox0 + qx;
      if (xx >= ow) break;
      VF o[4];
      FN(at_row)(t[0][qx], t[1][qx], t[2][qx], t[3][qx], t[4][qx], t[5][qx], o);
      float *out = y + ((long)oy0 * ow + xx) * co_n + k;
      for (int p = 0; p < 4; p++) {
        if (oy0 + p >= oh) break;
        VF r = o[p] + b;
        if (relu) r = VMAX(r, zero);
        ST(out + p * rs, r);
      }
    }
  }
}

/* m[r·co_n + j] = Σ_ci v[r·ci_n + ci]·u[ci·co_n + j], rows R at a time, CV vectors of columns. */
#define PRODUCT_KERNEL(R, CV)                                                                      \
  INL void FN(mk_##R##x##CV)(const float *a, const float *u, float *o, int ci_n, int co_n) {     \
    VF acc[R][CV];                                                                                 \
    _Pragma("GCC unroll 24") for (int r = 0; r < R; r++)                                          \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) acc[r][q] = SPLAT(0.0f);             \
    const float *b = u;                                                                            \
    for (int ci = 0; ci < ci_n; ci++, b += co_n) {                                                 \
      VF bv[CV];                                                                                   \
      _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) bv[q] = LD(b + q * WIDE);              \
      _Pragma("GCC unroll 24") for (int r = 0; r < R; r++) {                                      \
        const VF ar = SPLAT(a[r * ci_n + ci]);                                                     \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) acc[r][q] =                          \
            FMADD(ar, bv[q], acc[r][q]);                                                           \
      }                                                                                            \
    }                                                                                              \
    _Pragma("GCC unroll 24") for (int r = 0; r < R; r++)                                          \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) ST(o + r * co_n + q * WIDE,          \
                                                                acc[r][q]);                        \
  }

PRODUCT_KERNEL(12, 1)
PRODUCT_KERNEL(6, 2)
#if WIDE == 16
PRODUCT_KERNEL(12, 2)
PRODUCT_KERNEL(6, 4)
#endif

/* The product of one position ξ over a block: rows a multiple of 12. */
INL void FN(tile_product)(const float *v, const float *u, float *m, int rows, int ci_n,
                          int co_n) {
  const int nv = co_n / WIDE;
  for (int j = 0; j < nv;) {
#if WIDE == 16
    if (nv - j >= 4) {
      for (int r = 0; r < rows; r += 6)
        FN(mk_6x4)(v + r * ci_n, u + j * WIDE, m + r * co_n + j * WIDE, ci_n, co_n);
      j += 4;
      continue;
    }
    if (nv - j >= 2) {
      for (int r = 0; r < rows; r += 12)
        FN(mk_12x2)(v + r * ci_n, u + j * WIDE, m + r * co_n + j * WIDE, ci_n, co_n);
      j += 2;
      continue;
    }
#else
    if (nv - j >= 2) {
      for (int r = 0; r < rows; r += 6)
        FN(mk_6x2)(v + r * ci_n, u + j * WIDE, m + r * co_n + j * WIDE, ci_n, co_n);
      j += 2;
      continue;
    }
#endif
    for (int r = 0; r < rows; r += 12)
      FN(mk_12x1)(v + r * ci_n, u + j * WIDE, m + r * co_n + j * WIDE, ci_n, co_n);
    j += 1;
  }
}

/* Tiles per block of the forward convolution (a multiple of 12). */
#define WIDE_BLOCK 36

/*
 * winograd_conv3x3's contract (wasm/winograd.c) for ci_n and co_n multiples of WIDE, with scratch
 * of its own (wide_scratch). Returns 0 without touching y when the channels do not fit (or scratch cannot be had).
 */
TGT int FN(wide_winograd_conv3x3)(const float *x, const float *u, const float *bias, int relu,
                                  float *y, int batch, int h, int w, int ci_n, int co_n, int pt,
                                  int pl, int oh, int ow) {
  if (ci_n % WIDE != 0 || co_n % WIDE != 0) return 0;
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4;
  const int per_image = th * tw, total = batch * per_image;
  const int vs = WIDE_BLOCK * ci_n, ms = WIDE_BLOCK * co_n;
  float *v = wide_scratch(sizeof(float) * 36 * (size_t)(vs + ms));
  if (v == NULL) return 0;
  float *mm = v + 36 * (size_t)vs;
  for (int t0 = 0; t0 < total; t0 += WIDE_BLOCK) {
    const int n = total - t0 < WIDE_BLOCK ? total - t0 : WIDE_BLOCK;
    const int rows = (n + 11) / 12 * 12;
    for (int t = 0; t < n; t++) {
      const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
      const int ty = in_image / tw, tx = in_image % tw;
      FN(input_tile)(x + (long)b * h * w * ci_n, h, w, ci_n, 4 * ty - pt, 4 * tx - pl,
                     v + t * ci_n, vs);
    }
    for (int t = n; t < rows; t++)
      for (int xi = 0; xi < 36; xi++)
        for (int c = 0; c < ci_n; c += WIDE) ST(v + xi * vs + t * ci_n + c, SPLAT(0.0f));
    for (int xi = 0; xi < 36; xi++)
      FN(tile_product)(v + xi * vs, u + (long)xi * ci_n * co_n, mm + xi * ms, rows, ci_n, co_n);
    for (int t = 0; t < n; t++) {
      const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
      const int ty = in_image / tw, tx = in_image % tw;
      FN(output_tile)(mm + t * co_n, ms, co_n, bias, relu, y + (long)b * oh * ow * co_n, oh, ow,
                      4 * ty, 4 * tx);
    }
  }
  return 1;
}

/* Z_ξ[t, ·] at z (ξ stride zs) = A dY Aᵀ of the 4×4 tile of dy (oh × ow × co_n) at (oy0, ox0). */
INL void FN(grad_tile)(const float *dy, int oh, int ow, int co_n, int oy0, int ox0, float *z,
                       int zs) {
  const VF zero = SPLAT(0.0f);
  int cok[4];
  for (int j = 0; j < 4; j++) cok[j] = ox0 + j < ow;
  for (int k = 0; k < co_n; k += WIDE) {
    VF t[4][6];
    for (int r = 0; r < 4; r++) {
      const int rok = oy0 + r < oh;
      const float *p = dy + ((long)(oy0 + r) * ow + ox0) * co_n + k;
      VF d[4];
      for (int j = 0; j < 4; j++) d[j] = (rok && cok[j]) ? LD(p + j * co_n) : zero;
      FN(a_row)(d[0], d[1], d[2], d[3], t[r]);
    }
    for (int j = 0; j < 6; j++) {
      VF o[6];
      FN(a_row)(t[0][j], t[1][j], t[2][j], t[3][j], o);
      for (int i = 0; i < 6; i++) ST(z + (6 * i + j) * zs + k, o[i]);
    }
  }
}

/* s[ci·co_n + j] += Σ_{t < rows} v[t·ci_n + ci]·z[t·co_n + j] (float32 over the block, then
 * float64), CR input channels by CV vectors of output channels at a time. */
#define PRODUCT_T_KERNEL(CR, CV)                                                                   \
  INL void FN(mkt_##CR##x##CV)(const float *v, const float *z, double *s, int rows, int ci_n,    \
                               int co_n) {                                                         \
    VF acc[CR][CV];                                                                                \
    _Pragma("GCC unroll 16") for (int r = 0; r < CR; r++)                                         \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) acc[r][q] = SPLAT(0.0f);             \
    const float *a = v, *b = z;                                                                    \
    for (int t = 0; t < rows; t++, a += ci_n, b += co_n) {                                         \
      VF bv[CV];                                                                                   \
      _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) bv[q] = LD(b + q * WIDE);              \
      _Pragma("GCC unroll 16") for (int r = 0; r < CR; r++) {                                     \
        const VF ar = SPLAT(a[r]);                                                                 \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) acc[r][q] =                          \
            FMADD(ar, bv[q], acc[r][q]);                                                           \
      }                                                                                            \
    }                                                                                              \
    _Pragma("GCC unroll 16") for (int r = 0; r < CR; r++)                                         \
        _Pragma("GCC unroll 4") for (int q = 0; q < CV; q++) {                                    \
      VDU *o = (VDU *)(void *)(s + r * co_n + q * WIDE);                                           \
      *o = *o + __builtin_convertvector(acc[r][q], VD);                                            \
    }                                                                                              \
  }

#if WIDE == 16
PRODUCT_T_KERNEL(16, 1)
PRODUCT_T_KERNEL(8, 2)
PRODUCT_T_KERNEL(4, 4)
#else
PRODUCT_T_KERNEL(8, 1)
PRODUCT_T_KERNEL(4, 2)
#endif

INL void FN(tile_product_t)(const float *v, const float *z, double *s, int rows, int ci_n,
                            int co_n) {
  const int nv = co_n / WIDE;
#if WIDE == 16
  if (nv % 4 == 0) {
    for (int ci = 0; ci < ci_n; ci += 4)
      for (int j = 0; j < co_n; j += 4 * WIDE)
        FN(mkt_4x4)(v + ci, z + j, s + ci * co_n + j, rows, ci_n, co_n);
  } else if (nv % 2 == 0 && ci_n % 8 == 0) {
    for (int ci = 0; ci < ci_n; ci += 8)
      for (int j = 0; j < co_n; j += 2 * WIDE)
        FN(mkt_8x2)(v + ci, z + j, s + ci * co_n + j, rows, ci_n, co_n);
  } else {
    for (int ci = 0; ci < ci_n; ci += 16)
      for (int j = 0; j < co_n; j += WIDE)
        FN(mkt_16x1)(v + ci, z + j, s + ci * co_n + j, rows, ci_n, co_n);
  }
#else
  if (nv % 2 == 0) {
    for (int ci = 0; ci < ci_n; ci += 4)
      for (int j = 0; j < co_n; j += 2 * WIDE)
        FN(mkt_4x2)(v + ci, z + j, s + ci * co_n + j, rows, ci_n, co_n);
  } else {
    for (int ci = 0; ci < ci_n; ci += 8)
      for (int j = 0; j < co_n; j += WIDE)
        FN(mkt_8x1)(v + ci, z + j, s + ci * co_n + j, rows, ci_n, co_n);
  }
#endif
}

/* The 1D transform Gᵀ·(s0..s5) of the filter gradient, into o0..o2 (float64). */
#define WGT_ROW(s0, s1, s2, s3, s4, s5, o0, o1, o2)                                              \
  do {                                                                                           \
    o0 = (s0) / 4.0 - ((s1) + (s2)) / 6.0 + ((s3) + (s4)) / 24.0;                                \
    o1 = ((s2) - (s1)) / 6.0 + ((s3) - (s4)) / 12.0;                                             \
    o2 = ((s3) + (s4)) / 6.0 - ((s1) + (s2)) / 6.0 + (s5);                                       \
  } while (0)

/*
 * winograd_filter_grad3x3's contract (wasm/winograd.c) for ci_n and co_n multiples of WIDE, with
 * its own scratch. Returns 0 without touching dw when the channels do not fit.
 */
TGT int FN(wide_winograd_filter_grad3x3)(const float *x, const float *dy, float *dw, int batch,
                                         int h, int w, int ci_n, int co_n, int pt, int pl, int oh,
                                         int ow) {
  if (ci_n % WIDE != 0 || co_n % WIDE != 0 || ci_n % 8 != 0) return 0;
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4;
  const int per_image = th * tw, total = batch * per_image;
  /* Tiles per block: the block's V and Z near 768 kB, so that they stay in L2. */
  int block = (768 * 1024) / (144 * (ci_n + co_n));
  block = block > 144 ? 144 : block < 12 ? 12 : block / 12 * 12;
  const int vs = block * ci_n, zs = block * co_n, plane = ci_n * co_n;
  double *s = wide_scratch(sizeof(double) * 36 * (size_t)plane +
                           sizeof(float) * 36 * (size_t)(vs + zs));
  if (s == NULL) return 0;
  float *v = (float *)(s + 36 * (size_t)plane);
  float *z = v + 36 * (size_t)vs;
  for (int i = 0; i < 36 * plane; i++) s[i] = 0.0;
  for (int t0 = 0; t0 < total; t0 += block) {
    const int n = total - t0 < block ? total - t0 : block;
    for (int t = 0; t < n; t++) {
      const int tile = t0 + t, b = tile / per_image, in_image = tile % per_image;
      const int ty = in_image / tw, tx = in_image % tw;
      FN(input_tile)(x + (long)b * h * w * ci_n, h, w, ci_n, 4 * ty - pt, 4 * tx - pl,
                     v + t * ci_n, vs);
      FN(grad_tile)(dy + (long)b * oh * ow * co_n, oh, ow, co_n, 4 * ty, 4 * tx, z + t * co_n,
                    zs);
    }
    for (int xi = 0; xi < 36; xi++)
      FN(tile_product_t)(v + xi * vs, z + xi * zs, s + xi * plane, n, ci_n, co_n);
  }
  for (int p = 0; p < plane; p++) {
    const double *q = s + p;
#define SV(i, j) q[(6 * (i) + (j)) * plane]
    double r[3][6];
    for (int j = 0; j < 6; j++)
      WGT_ROW(SV(0, j), SV(1, j), SV(2, j), SV(3, j), SV(4, j), SV(5, j), r[0][j], r[1][j],
              r[2][j]);
#undef SV
    float *out = dw + p;
    for (int i = 0; i < 3; i++) {
      double o0, o1, o2;
      WGT_ROW(r[i][0], r[i][1], r[i][2], r[i][3], r[i][4], r[i][5], o0, o1, o2);
      out[(3 * i) * plane] = (float)o0;
      out[(3 * i + 1) * plane] = (float)o1;
      out[(3 * i + 2) * plane] = (float)o2;
    }
  }
  return 1;
}

/* Rows of a pointwise convolution per chunk: its x, y and the product stay in L2. */
#define PW_CHUNK 96

/*
 * y [m, co_n] = x [m, ci_n] · w [ci_n, co_n] (+ bias [co_n], ReLU if relu): a pointwise (1×1,
 * stride 1) convolution of NHWC x over its m = batch·h·w pixels, float32, in place. co_n a
 * multiple of WIDE, any ci_n ≥ 1. Returns 0 without touching y when co_n does not fit.
 */
TGT int FN(wide_pointwise)(const float *x, const float *w, const float *bias, int relu, float *y,
                           int m, int ci_n, int co_n) {
  if (co_n % WIDE != 0 || ci_n < 1 || m < 1) return 0;
  const VF zero = SPLAT(0.0f);
  for (int r0 = 0; r0 < m; r0 += PW_CHUNK) {
    const int n = m - r0 < PW_CHUNK ? m - r0 : PW_CHUNK;
    const int full = n / 12 * 12;
    if (full > 0) FN(tile_product)(x + (long)r0 * ci_n, w, y + (long)r0 * co_n, full, ci_n, co_n);
    if (full < n) {
      /* The last rows through a zero-padded block of 12. */
      float *pad = wide_scratch(sizeof(float) * 12 * (size_t)(ci_n + co_n));
      if (pad == NULL) return 0;
      float *po = pad + 12 * ci_n;
      for (int i = 0; i < 12 * ci_n; i++) pad[i] = 0.0f;
      for (int r = full; r < n; r++)
        for (int c = 0; c < ci_n; c++) pad[(r - full) * ci_n + c] = x[(long)(r0 + r) * ci_n + c];
      FN(tile_product)(pad, w, po, 12, ci_n, co_n);
      for (int r = full; r < n; r++)
        for (int c = 0; c < co_n; c++) y[(long)(r0 + r) * co_n + c] = po[(r - full) * co_n + c];
    }
    if (bias != NULL || relu) {
      for (int r = 0; r < n; r++) {
        float *o = y + (long)(r0 + r) * co_n;
        for (int k = 0; k < co_n; k += WIDE) {
          VF v = LD(o + k);
          if (bias != NULL) v = v + LD(bias + k);
          if (relu) v = VMAX(v, zero);
          ST(o + k, v);
        }
      }
    }
  }
  return 1;
}

/*
 * dx [m, ci_n] = dy [m, co_n] · wᵀ for the filter w [ci_n, co_n] of a pointwise convolution
 * (the filter transposed to scratch first). ci_n a multiple of WIDE. Returns 0 without touching
 * dx when it does not fit.
 */
TGT int FN(wide_pointwise_input_grad)(const float *dy, const float *w, float *dx, int m, int ci_n,
                                      int co_n) {
  if (ci_n % WIDE != 0 || co_n < 1 || m < 1) return 0;
  /* Own allocation: wide_pointwise's padded rows take the thread's scratch. */
  float *wt = aligned_alloc(64, sizeof(float) * (((size_t)ci_n * co_n + 15) / 16 * 16));
  if (wt == NULL) return 0;
  for (int c = 0; c < ci_n; c++)
    for (int k = 0; k < co_n; k++) wt[k * ci_n + c] = w[c * co_n + k];
  const int done = FN(wide_pointwise)(dy, wt, NULL, 0, dx, m, co_n, ci_n);
  free(wt);
  return done;
}

/*
 * dw [ci_n, co_n] = x [m, ci_n]ᵀ · dy [m, co_n], the filter gradient of a pointwise convolution:
 * float32 sums over chunks of rows, float64 across them. ci_n and co_n multiples of 16 (of 8 and
 * WIDE under AVX2). Returns 0 without touching dw when they do not fit.
 */
TGT int FN(wide_pointwise_filter_grad)(const float *x, const float *dy, float *dw, int m,
                                       int ci_n, int co_n) {
  if (co_n % WIDE != 0 || ci_n % 16 != 0 || m < 1) return 0;
  const int plane = ci_n * co_n;
  double *s = wide_scratch(sizeof(double) * (size_t)plane);
  if (s == NULL) return 0;
  for (int i = 0; i < plane; i++) s[i] = 0.0;
  const int chunk = 256;
  for (int r0 = 0; r0 < m; r0 += chunk) {
    const int n = m - r0 < chunk ? m - r0 : chunk;
    FN(tile_product_t)(x + (long)r0 * ci_n, dy + (long)r0 * co_n, s, n, ci_n, co_n);
  }
  for (int i = 0; i < plane; i++) dw[i] = (float)s[i];
  return 1;
}


/*
 * General convolutions (any filter, stride and padding; NHWC x [batch, h, wd, ci_n], filter
 * [fh, fw, ci_n, co_n] read as a [K, co_n] matrix with K = fh·fw·ci_n) as products over chunks
 * of im2col rows gathered into a second thread-local scratch (col_scratch), so the im2col matrix
 * never exists whole: ResNet-20's strided 3×3 and 1×1 convolutions, which the Winograd and
 * pointwise kernels do not take.
 */
/* Rows [r0, r0 + n) of im2col(x) into col (kp floats a row: the K taps, then zeros). */
INL void FN(im2col_rows)(const float *x, float *col, long r0, int n, int kp, int h, int wd,
                         int ci_n, int fh, int fw, int sh, int sw, int pt, int pl, int oh,
                         int ow) {
  const long plane = (long)oh * ow;
  for (int r = 0; r < n; r++) {
    const long p = r0 + r;
    const long b = p / plane;
    const int oy = (int)((p % plane) / ow), ox = (int)(p % ow);
    float *o = col + (long)r * kp;
    for (int ky = 0; ky < fh; ky++) {
      const int iy = oy * sh - pt + ky;
      for (int kx = 0; kx < fw; kx++, o += ci_n) {
        const int ix = ox * sw - pl + kx;
        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) {
          for (int c = 0; c < ci_n; c++) o[c] = 0.0f;
        } else {
          const float *src = x + ((b * h + iy) * wd + ix) * (long)ci_n;
          for (int c = 0; c < ci_n; c++) o[c] = src[c];
        }
      }
    }
    for (int c = fh * fw * ci_n; c < kp; c++) col[(long)r * kp + c] = 0.0f;
  }
}

/*
 * y [batch, oh, ow, co_n] = im2col(x) · w (+ bias, ReLU if relu), in chunks of PW_CHUNK output
 * pixels. co_n a multiple of WIDE. Returns 0 without touching y when it does not fit.
 */
TGT int FN(wide_conv_gemm)(const float *x, const float *w, const float *bias, int relu, float *y,
                           int batch, int h, int wd, int ci_n, int fh, int fw, int co_n, int sh,
                           int sw, int pt, int pl, int oh, int ow) {
  const int k = fh * fw * ci_n;
  const long m = (long)batch * oh * ow;
  if (co_n % WIDE != 0 || k < 1 || m < 1) return 0;
  float *col = col_scratch(sizeof(float) * PW_CHUNK * (size_t)k);
  if (col == NULL) return 0;
  for (long r0 = 0; r0 < m; r0 += PW_CHUNK) {
    const int n = m - r0 < PW_CHUNK ? (int)(m - r0) : PW_CHUNK;
    FN(im2col_rows)(x, col, r0, n, k, h, wd, ci_n, fh, fw, sh, sw, pt, pl, oh, ow);
    if (!FN(wide_pointwise)(col, w, bias, relu, y + r0 * co_n, n, k, co_n)) return 0;
  }
  return 1;
}

/*
 * dw [fh, fw, ci_n, co_n] = im2col(x)ᵀ · dy: float32 sums over chunks of 256 output pixels,
 * float64 across them (im2col rows padded with zeros to a multiple of 16 taps). co_n a multiple
 * of WIDE. Returns 0 without touching dw when it does not fit.
 */
TGT int FN(wide_conv_gemm_filter_grad)(const float *x, const float *dy, float *dw, int batch,
                                       int h, int wd, int ci_n, int fh, int fw, int co_n, int sh,
                                       int sw, int pt, int pl, int oh, int ow) {
  const int k = fh * fw * ci_n;
  const int kp = (k + 15) / 16 * 16;
  const long m = (long)batch * oh * ow;
  if (co_n % WIDE != 0 || k < 1 || m < 1) return 0;
  const int chunk = 256;
  const size_t plane = (size_t)kp * co_n;
  double *s = wide_scratch(sizeof(double) * plane);
  float *col = col_scratch(sizeof(float) * chunk * (size_t)kp);
  if (s == NULL || col == NULL) return 0;
  for (size_t i = 0; i < plane; i++) s[i] = 0.0;
  for (long r0 = 0; r0 < m; r0 += chunk) {
    const int n = m - r0 < chunk ? (int)(m - r0) : chunk;
    FN(im2col_rows)(x, col, r0, n, kp, h, wd, ci_n, fh, fw, sh, sw, pt, pl, oh, ow);
    FN(tile_product_t)(col, dy + r0 * co_n, s, n, kp, co_n);
  }
  for (size_t i = 0; i < (size_t)k * co_n; i++) dw[i] = (float)s[i];
  return 1;
}

/*
 * dx [batch, h, wd, ci_n] = col2im(dy · wᵀ): per chunk of PW_CHUNK output pixels, the product
 * with the transposed filter (padded with zero columns to a multiple of WIDE taps) into
 * col_scratch, then added into dx where each tap reads (dx zeroed first). Returns 0 without
 * touching dx when it cannot run.
 */
TGT int FN(wide_conv_gemm_input_grad)(const float *dy, const float *w, float *dx, int batch, int h,
                                      int wd, int ci_n, int fh, int fw, int co_n, int sh, int sw,
                                      int pt, int pl, int oh, int ow) {
  const int k = fh * fw * ci_n;
  const int kp = (k + WIDE - 1) / WIDE * WIDE;
  const long m = (long)batch * oh * ow;
  if (k < 1 || co_n < 1 || m < 1) return 0;
  float *col = col_scratch(sizeof(float) * PW_CHUNK * (size_t)kp);
  float *wt = aligned_alloc(64, sizeof(float) * (((size_t)kp * co_n + 15) / 16 * 16));
  if (col == NULL || wt == NULL) {
    free(wt);
    return 0;
  }
  for (int j = 0; j < co_n; j++) {
    for (int c = 0; c < k; c++) wt[(long)j * kp + c] = w[(long)c * co_n + j];
    for (int c = k; c < kp; c++) wt[(long)j * kp + c] = 0.0f;
  }
  const long total = (long)batch * h * wd * ci_n;
  for (long i = 0; i < total; i++) dx[i] = 0.0f;
  const long plane = (long)oh * ow;
  int ok = 1;
  for (long r0 = 0; r0 < m && ok; r0 += PW_CHUNK) {
    const int n = m - r0 < PW_CHUNK ? (int)(m - r0) : PW_CHUNK;
    ok = FN(wide_pointwise)(dy + r0 * co_n, wt, NULL, 0, col, n, co_n, kp);
    for (int r = 0; r < n && ok; r++) {
      const long p = r0 + r;
      const long b = p / plane;
      const int oy = (int)((p % plane) / ow), ox = (int)(p % ow);
      const float *o = col + (long)r * kp;
      for (int ky = 0; ky < fh; ky++) {
        const int iy = oy * sh - pt + ky;
        for (int kx = 0; kx < fw; kx++, o += ci_n) {
          const int ix = ox * sw - pl + kx;
          if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
          float *d = dx + ((b * h + iy) * wd + ix) * (long)ci_n;
          for (int c = 0; c < ci_n; c++) d[c] += o[c];
        }
      }
    }
  }
  free(wt);
  return ok;
}

#undef PW_CHUNK
/* Depthwise convolutions (wasm/depthwise.c's contracts and loops), WIDE channels per vector
 * and fused multiply-adds: the first tap row inside the image and one past the last. */
INL int FN(dw_lo)(int o, int s, int p) { return p - o * s > 0 ? p - o * s : 0; }
INL int FN(dw_hi)(int o, int s, int p, int f, int n) { return f < n + p - o * s ? f : n + p - o * s; }

/* depthwise_conv2d for c a multiple of WIDE; returns 0 without touching y otherwise. */
TGT int FN(wide_depthwise)(const float *x, const float *w, const float *bias, int relu, float *y,
                           int batch, int h, int wd, int c, int fh, int fw, int sh, int sw, int pt,
                           int pl, int oh, int ow) {
  if (c % WIDE != 0) return 0;
  const VF zero = SPLAT(0.0f);
  for (int b = 0; b < batch; b++) {
    const float *xb = x + (long)b * h * wd * c;
    for (int oy = 0; oy < oh; oy++) {
      const int i0 = FN(dw_lo)(oy, sh, pt), i1 = FN(dw_hi)(oy, sh, pt, fh, h);
      const int iy0 = oy * sh - pt;
      for (int ox = 0; ox < ow; ox++) {
        const int j0 = FN(dw_lo)(ox, sw, pl), j1 = FN(dw_hi)(ox, sw, pl, fw, wd);
        const int ix0 = ox * sw - pl;
        float *yp = y + (((long)b * oh + oy) * ow + ox) * c;
        for (int ch = 0; ch < c; ch += WIDE) {
          VF a = bias ? LD(bias + ch) : zero;
          for (int i = i0; i < i1; i++) {
            const float *xr = xb + ((long)(iy0 + i) * wd + ix0) * c + ch;
            const float *wr = w + i * fw * c + ch;
            for (int j = j0; j < j1; j++) a = FMADD(LD(xr + j * c), LD(wr + j * c), a);
          }
          if (relu) a = VMAX(a, zero);
          ST(yp + ch, a);
        }
      }
    }
  }
  return 1;
}

/* The taps (step s) reaching input row n from an output row inside [0, o) (wasm/depthwise.c). */
INL int FN(dw_grad_lo)(int n, int s, int p, int o) {
  const int lo = n + p - (o - 1) * s > 0 ? n + p - (o - 1) * s : 0;
  const int r = (n + p) % s;
  return lo + ((r - lo % s) % s + s) % s;
}

/* depthwise_conv2d_input_grad for c a multiple of WIDE; returns 0 otherwise. */
TGT int FN(wide_depthwise_input_grad)(const float *dy, const float *w, float *dx, int batch, int h,
                                      int wd, int c, int fh, int fw, int sh, int sw, int pt, int pl,
                                      int oh, int ow) {
  if (c % WIDE != 0) return 0;
  const VF zero = SPLAT(0.0f);
  for (int b = 0; b < batch; b++) {
    const float *dyb = dy + (long)b * oh * ow * c;
    for (int iy = 0; iy < h; iy++) {
      const int i0 = FN(dw_grad_lo)(iy, sh, pt, oh), i1 = fh < iy + pt + 1 ? fh : iy + pt + 1;
      for (int ix = 0; ix < wd; ix++) {
        const int j0 = FN(dw_grad_lo)(ix, sw, pl, ow), j1 = fw < ix + pl + 1 ? fw : ix + pl + 1;
        float *dxp = dx + (((long)b * h + iy) * wd + ix) * c;
        for (int ch = 0; ch < c; ch += WIDE) {
          VF a = zero;
          for (int i = i0; i < i1; i += sh) {
            const int oy = (iy + pt - i) / sh;
            for (int j = j0; j < j1; j += sw) {
              const int ox = (ix + pl - j) / sw;
              a = FMADD(LD(dyb + ((long)oy * ow + ox) * c + ch), LD(w + (i * fw + j) * c + ch), a);
            }
          }
          ST(dxp + ch, a);
        }
      }
    }
  }
  return 1;
}

/* depthwise_conv2d_filter_grad for c a multiple of WIDE (each image summed in float32, the
 * images in float64); returns 0 otherwise. */
TGT int FN(wide_depthwise_filter_grad)(const float *x, const float *dy, float *dw, int batch,
                                       int h, int wd, int c, int fh, int fw, int sh, int sw, int pt,
                                       int pl, int oh, int ow) {
  if (c % WIDE != 0) return 0;
  const int n = fh * fw * c;
  double *total = wide_scratch(sizeof(double) * (size_t)n + sizeof(float) * (size_t)n + 64);
  if (total == NULL) return 0;
  float *acc = (float *)(total + n);
  for (int k = 0; k < n; k++) total[k] = 0.0;
  for (int b = 0; b < batch; b++) {
    for (int k = 0; k < n; k++) acc[k] = 0.0f;
    const float *xb = x + (long)b * h * wd * c;
    for (int oy = 0; oy < oh; oy++) {
      const int i0 = FN(dw_lo)(oy, sh, pt), i1 = FN(dw_hi)(oy, sh, pt, fh, h);
      const int iy0 = oy * sh - pt;
      for (int ox = 0; ox < ow; ox++) {
        const int j0 = FN(dw_lo)(ox, sw, pl), j1 = FN(dw_hi)(ox, sw, pl, fw, wd);
        const int ix0 = ox * sw - pl;
        const float *gp = dy + (((long)b * oh + oy) * ow + ox) * c;
        for (int ch = 0; ch < c; ch += WIDE) {
          const VF g = LD(gp + ch);
          for (int i = i0; i < i1; i++) {
            const float *xr = xb + ((long)(iy0 + i) * wd + ix0) * c + ch;
            float *ar = acc + i * fw * c + ch;
            for (int j = j0; j < j1; j++) ST(ar + j * c, FMADD(LD(xr + j * c), g, LD(ar + j * c)));
          }
        }
      }
    }
    for (int k = 0; k < n; k += WIDE) {
      VDU *o = (VDU *)(void *)(total + k);
      *o = *o + __builtin_convertvector(LD(acc + k), VD);
    }
  }
  for (int k = 0; k < n; k++) dw[k] = (float)total[k];
  return 1;
}

#undef WGT_ROW
#undef WIDE_BLOCK
#undef PRODUCT_KERNEL
#undef PRODUCT_T_KERNEL
#undef FMADD
#undef VMAX
#undef LD
#undef ST
#undef SPLAT
#undef VF
#undef VFU
#undef VD
#undef VDU
#undef FN
#undef TGT
#undef INL
