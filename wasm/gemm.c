/*
 * Single-precision GEMM for WebAssembly SIMD (simd128): C = A·B (or C += A·B), any strides, so
 * the four transpose forms of a matrix product cost the same. Layout after Goto & van de Geijn,
 * "Anatomy of high-performance matrix multiplication" (ACM TOMS 34(3), 2008) as in BLIS: B is
 * packed in KC×NC blocks (kept in L2), A in MC×KC blocks, and a 6×8 register tile (12 f32x4
 * accumulators, 15 of the 16 vector registers V8 uses on x86-64) runs over packed panels.
 *
 * Freestanding: no libc; the caller owns all memory (pointers into this module's memory).
 * Build: scripts/build-wasm.sh.
 */
#include <wasm_simd128.h>

#define MR 6
#define NR 8
#define KC 256
#define MC 120
#define NC 2048

#define EXPORT(name) __attribute__((export_name(name)))

static float edge_tile[MR * NR];

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* Floats of scratch the caller must pass as `pack_a` and `pack_b`. */
EXPORT("gemm_pack_a_floats") int gemm_pack_a_floats(void) { return MC * KC; }
EXPORT("gemm_pack_b_floats") int gemm_pack_b_floats(void) { return KC * NC; }

/* A(i, p) = a[i*rs + p*cs] for i < mc, p < kc -> MR-row panels, zero-padded rows. */
static void pack_a(int mc, int kc, const float *a, int rs, int cs, float *dst) {
  for (int i0 = 0; i0 < mc; i0 += MR) {
    const int mr = min_int(MR, mc - i0);
    if (cs == 1) {
      for (int r = 0; r < MR; r++) {
        if (r < mr) {
          const float *row = a + (i0 + r) * rs;
          for (int p = 0; p < kc; p++) dst[p * MR + r] = row[p];
        } else {
          for (int p = 0; p < kc; p++) dst[p * MR + r] = 0.0f;
        }
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float *col = a + p * cs + i0 * rs;
        for (int r = 0; r < MR; r++) dst[p * MR + r] = r < mr ? col[r * rs] : 0.0f;
      }
    }
    dst += MR * kc;
  }
}

/* B(p, j) = b[p*rs + j*cs] for p < kc, j < nc -> NR-column panels, zero-padded columns. */
static void pack_b(int kc, int nc, const float *b, int rs, int cs, float *dst) {
  for (int j0 = 0; j0 < nc; j0 += NR) {
    const int nr = min_int(NR, nc - j0);
    if (cs == 1 && nr == NR) {
      for (int p = 0; p < kc; p++) {
        const float *src = b + p * rs + j0;
        wasm_v128_store(dst + p * NR, wasm_v128_load(src));
        wasm_v128_store(dst + p * NR + 4, wasm_v128_load(src + 4));
      }
    } else if (rs == 1 && nr == NR) {
      for (int c = 0; c < NR; c++) {
        const float *col = b + (j0 + c) * cs;
        for (int p = 0; p < kc; p++) dst[p * NR + c] = col[p];
      }
    } else {
      for (int p = 0; p < kc; p++) {
        for (int c = 0; c < NR; c++) dst[p * NR + c] = c < nr ? b[p * rs + (j0 + c) * cs] : 0.0f;
      }
    }
    dst += NR * kc;
  }
}

#define ROW_FMA(r)                                                                        \
  {                                                                                       \
    const v128_t ar = wasm_f32x4_splat(a[r]);                                             \
    c##r##0 = wasm_f32x4_add(c##r##0, wasm_f32x4_mul(ar, b0));                           \
    c##r##1 = wasm_f32x4_add(c##r##1, wasm_f32x4_mul(ar, b1));                           \
  }

#define ROW_STORE(r, dst, ld, acc)                                                        \
  {                                                                                       \
    float *row = (dst) + (r) * (ld);                                                      \
    if (acc) {                                                                            \
      c##r##0 = wasm_f32x4_add(c##r##0, wasm_v128_load(row));                            \
      c##r##1 = wasm_f32x4_add(c##r##1, wasm_v128_load(row + 4));                        \
    }                                                                                     \
    wasm_v128_store(row, c##r##0);                                                        \
    wasm_v128_store(row + 4, c##r##1);                                                    \
  }

/* One MR×NR tile of C from packed panels a (kc×MR) and b (kc×NR). */
static void micro_kernel(int kc, const float *restrict a, const float *restrict b, float *c,
                         int ldc, int mr, int nr, int acc) {
  v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int p = 0; p < kc; p++) {
    const v128_t b0 = wasm_v128_load(b);
    const v128_t b1 = wasm_v128_load(b + 4);
    ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
    ROW_STORE(0, c, ldc, acc) ROW_STORE(1, c, ldc, acc) ROW_STORE(2, c, ldc, acc)
    ROW_STORE(3, c, ldc, acc) ROW_STORE(4, c, ldc, acc) ROW_STORE(5, c, ldc, acc)
    return;
  }
  ROW_STORE(0, edge_tile, NR, 0) ROW_STORE(1, edge_tile, NR, 0) ROW_STORE(2, edge_tile, NR, 0)
  ROW_STORE(3, edge_tile, NR, 0) ROW_STORE(4, edge_tile, NR, 0) ROW_STORE(5, edge_tile, NR, 0)
  for (int r = 0; r < mr; r++) {
    for (int j = 0; j < nr; j++) {
      const float v = edge_tile[r * NR + j];
      c[r * ldc + j] = acc ? c[r * ldc + j] + v : v;
    }
  }
}

/*
 * C[i*ldc + j] (+)= Σ_p A(i, p)·B(p, j) for i < m, j < n, with A(i, p) = a[i*rs_a + p*cs_a] and
 * B(p, j) = b[p*rs_b + j*cs_b]. `accumulate` = 0 overwrites C; k = 0 then writes zeros.
 * pack_a / pack_b: scratch of gemm_pack_a_floats() / gemm_pack_b_floats() floats, 16-byte aligned.
 */
EXPORT("gemm")
void gemm(int m, int n, int k, const float *a, int rs_a, int cs_a, const float *b, int rs_b,
          int cs_b, float *c, int ldc, int accumulate, float *pack_a_buf, float *pack_b_buf) {
  if (k == 0 && !accumulate) {
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
    return;
  }
  for (int jc = 0; jc < n; jc += NC) {
    const int nc = min_int(NC, n - jc);
    for (int pc = 0; pc < k; pc += KC) {
      const int kc = min_int(KC, k - pc);
      pack_b(kc, nc, b + pc * rs_b + jc * cs_b, rs_b, cs_b, pack_b_buf);
      const int acc = accumulate || pc > 0;
      for (int ic = 0; ic < m; ic += MC) {
        const int mc = min_int(MC, m - ic);
        pack_a(mc, kc, a + ic * rs_a + pc * cs_a, rs_a, cs_a, pack_a_buf);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = min_int(NR, nc - jr);
          for (int ir = 0; ir < mc; ir += MR) {
            micro_kernel(kc, pack_a_buf + ir * kc, pack_b_buf + jr * kc,
                         c + (ic + ir) * ldc + jc + jr, ldc, min_int(MR, mc - ir), nr, acc);
          }
        }
      }
    }
  }
}

/* ---- Convolution gradients (NHWC, no dilation) as GEMMs over im2col chunks ---------------- */

/*
 * Rows [row0, row0 + rows) of the im2col matrix of x: row (b, oy, ox), column (i, j, ch) holds
 * x[b, oy*sh - pt + i, ox*sw - pl + j, ch], or 0 in the padding.
 */
static void im2col_rows(const float *x, int h, int w, int c, int fh, int fw, int sh, int sw,
                        int pt, int pl, int oh, int ow, int row0, int rows, float *col) {
  const int kcols = fh * fw * c;
  for (int r = 0; r < rows; r++) {
    const int pix = row0 + r;
    const int b = pix / (oh * ow), rest = pix % (oh * ow), oy = rest / ow, ox = rest % ow;
    float *dst = col + r * kcols;
    const int x0 = ox * sw - pl;
    const int inside = x0 >= 0 && x0 + fw <= w;
    for (int i = 0; i < fh; i++) {
      const int y = oy * sh - pt + i;
      float *d = dst + i * fw * c;
      if (y < 0 || y >= h) {
        __builtin_memset(d, 0, sizeof(float) * fw * c);
      } else if (inside) {
        /* NHWC: a filter row's taps and channels are one contiguous run of the input. */
        __builtin_memcpy(d, x + ((b * h + y) * w + x0) * c, sizeof(float) * fw * c);
      } else {
        for (int j = 0; j < fw; j++) {
          const int xx = x0 + j;
          if (xx < 0 || xx >= w) {
            __builtin_memset(d + j * c, 0, sizeof(float) * c);
          } else {
            __builtin_memcpy(d + j * c, x + ((b * h + y) * w + xx) * c, sizeof(float) * c);
          }
        }
      }
    }
  }
}

/* The inverse scatter: adds each im2col row back into dx (which the caller zeroed). */
static void col2im_rows(const float *col, int h, int w, int c, int fh, int fw, int sh, int sw,
                        int pt, int pl, int oh, int ow, int row0, int rows, float *dx) {
  const int kcols = fh * fw * c;
  for (int r = 0; r < rows; r++) {
    const int pix = row0 + r;
    const int b = pix / (oh * ow), rest = pix % (oh * ow), oy = rest / ow, ox = rest % ow;
    const float *src = col + r * kcols;
    for (int i = 0; i < fh; i++) {
      const int y = oy * sh - pt + i;
      if (y < 0 || y >= h) continue;
      for (int j = 0; j < fw; j++) {
        const int xx = ox * sw - pl + j;
        if (xx < 0 || xx >= w) continue;
        const float *s = src + (i * fw + j) * c;
        float *d = dx + ((b * h + y) * w + xx) * c;
        for (int ch = 0; ch < c; ch++) d[ch] += s[ch];
      }
    }
  }
}

/*
 * dW[fh, fw, c, o] = Σ over output pixels of im2col(x)ᵀ · dy, in chunks of `chunk_rows` pixels
 * (scratch `col`: chunk_rows·fh·fw·c floats) so the im2col rows stay in cache. When the filters
 * fit one 6-row register tile (LeNet's first layer: 6 filters, 25 im2col columns) the product
 * is formed transposed, dWᵀ = dyᵀ · im2col(x), into `dwt` (o·fh·fw·c floats), so the tile is
 * not mostly padding and the im2col rows pack with vector loads (14% faster there).
 */
EXPORT("conv2d_filter_grad")
void conv2d_filter_grad(const float *x, const float *dy, float *dw, int batch, int h, int w, int c,
                        int fh, int fw, int o, int sh, int sw, int pt, int pl, int oh, int ow,
                        float *col, int chunk_rows, float *pa, float *pb, float *dwt) {
  const int kcols = fh * fw * c, total = batch * oh * ow;
  const int transposed = o <= MR && o < kcols;
  if (total == 0) {
    __builtin_memset(dw, 0, sizeof(float) * kcols * o);
    return;
  }
  for (int row0 = 0; row0 < total; row0 += chunk_rows) {
    const int rows = min_int(chunk_rows, total - row0);
    im2col_rows(x, h, w, c, fh, fw, sh, sw, pt, pl, oh, ow, row0, rows, col);
    if (transposed) {
      gemm(o, kcols, rows, dy + row0 * o, 1, o, col, kcols, 1, dwt, kcols, row0 > 0, pa, pb);
    } else {
      gemm(kcols, o, rows, col, 1, kcols, dy + row0 * o, o, 1, dw, o, row0 > 0, pa, pb);
    }
  }
  if (transposed) {
    for (int i = 0; i < kcols; i++)
      for (int j = 0; j < o; j++) dw[i * o + j] = dwt[j * kcols + i];
  }
}

/* dx[batch, h, w, c] = col2im(dy · Wᵀ), chunked like conv2d_filter_grad. */
EXPORT("conv2d_input_grad")
void conv2d_input_grad(const float *dy, const float *filter, float *dx, int batch, int h, int w,
                       int c, int fh, int fw, int o, int sh, int sw, int pt, int pl, int oh, int ow,
                       float *col, int chunk_rows, float *pa, float *pb) {
  const int kcols = fh * fw * c, total = batch * oh * ow;
  __builtin_memset(dx, 0, sizeof(float) * batch * h * w * c);
  for (int row0 = 0; row0 < total; row0 += chunk_rows) {
    const int rows = min_int(chunk_rows, total - row0);
    gemm(rows, kcols, o, dy + row0 * o, o, 1, filter, 1, o, col, kcols, 0, pa, pb);
    col2im_rows(col, h, w, c, fh, fw, sh, sw, pt, pl, oh, ow, row0, rows, dx);
  }
}

/* Fills each of the m rows of c (row stride n) with bias[0..n). */
EXPORT("fill_rows")
void fill_rows(float *c, int m, int n, const float *bias) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) c[i * n + j] = bias[j];
}

/* x = max(x, 0) over `count` floats. */
EXPORT("relu_inplace")
void relu_inplace(float *x, int count) {
  int i = 0;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  /* pmax(x, 0) = x < 0 ? 0 : x keeps NaN, as TF.js relu does. */
  for (; i + 4 <= count; i += 4)
    wasm_v128_store(x + i, wasm_f32x4_pmax(wasm_v128_load(x + i), zero));
  for (; i < count; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}
