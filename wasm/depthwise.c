/*
 * Depthwise convolution (channel multiplier 1, no dilation, any filter size, stride and zero
 * padding), float32, NHWC, and both its gradients, in place on tfjs-backend-wasm's heap (linked
 * into heap-kernels.wasm: no static data, no shadow stack, so no local arrays; scratch comes from
 * the caller).
 *
 * A depthwise convolution (Howard et al., "MobileNets", 2017; Chollet, "Xception", CVPR 2017)
 * filters each channel by itself, so channels never mix and SIMD lanes run along them: each
 * step handles 16 channels (4 vectors) of one pixel, the taps that fall inside the image found
 * once per pixel by their bounds (no per-tap branch, no padded copy):
 *
 *   y [b, oy, ox, c]  = sum over i, j of x[b, oy*sh - pt + i, ox*sw - pl + j, c] * w[i, j, c]
 *   dx[b, iy, ix, c]  = sum over i, j with (iy + pt - i) / sh = oy, (ix + pl - j) / sw = ox whole
 *                       and inside dy, of dy[b, oy, ox, c] * w[i, j, c]   (a gather: each dx
 *                       element written once, no zeroing pass)
 *   dw[i, j, c]       = sum over b, oy, ox of x[b, oy*sh - pt + i, ox*sw - pl + j, c] * dy[b, oy, ox, c]
 *
 * The channel count must be a multiple of 4 (the caller checks). The filter gradient sums each
 * image in float32 and the images in float64.
 */
#include <wasm_simd128.h>

#ifndef EXPORT
#define EXPORT(name) __attribute__((export_name(name)))
#endif

static inline int max_int(int a, int b) { return a > b ? a : b; }
static inline int min_int(int a, int b) { return a < b ? a : b; }

/* The first tap index i in [0, f) whose input row o*s - p + i lies in [0, n), and one past the
 * last. */
static inline int tap_lo(int o, int s, int p) { return max_int(0, p - o * s); }
static inline int tap_hi(int o, int s, int p, int f, int n) { return min_int(f, n + p - o * s); }

/* y = depthwise_conv(x, w) (+ bias per channel when bias != 0, then ReLU when relu). */
EXPORT("depthwise_conv2d")
void depthwise_conv2d(const float *x, const float *w, const float *bias, int relu, float *y,
                      int batch, int h, int wd, int c, int fh, int fw, int sh, int sw, int pt,
                      int pl, int oh, int ow) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int b = 0; b < batch; b++) {
    const float *xb = x + b * h * wd * c;
    for (int oy = 0; oy < oh; oy++) {
      const int i0 = tap_lo(oy, sh, pt), i1 = tap_hi(oy, sh, pt, fh, h);
      const int iy0 = oy * sh - pt;
      for (int ox = 0; ox < ow; ox++) {
        const int j0 = tap_lo(ox, sw, pl), j1 = tap_hi(ox, sw, pl, fw, wd);
        const int ix0 = ox * sw - pl;
        float *yp = y + ((b * oh + oy) * ow + ox) * c;
        int ch = 0;
        for (; ch + 16 <= c; ch += 16) {
          v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero;
          if (bias) {
            a0 = wasm_v128_load(bias + ch);
            a1 = wasm_v128_load(bias + ch + 4);
            a2 = wasm_v128_load(bias + ch + 8);
            a3 = wasm_v128_load(bias + ch + 12);
          }
          for (int i = i0; i < i1; i++) {
            const float *xr = xb + ((iy0 + i) * wd + ix0) * c + ch;
            const float *wr = w + i * fw * c + ch;
            for (int j = j0; j < j1; j++) {
              const float *xp = xr + j * c, *wp = wr + j * c;
              a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(xp), wasm_v128_load(wp)));
              a1 = wasm_f32x4_add(a1,
                                  wasm_f32x4_mul(wasm_v128_load(xp + 4), wasm_v128_load(wp + 4)));
              a2 = wasm_f32x4_add(a2,
                                  wasm_f32x4_mul(wasm_v128_load(xp + 8), wasm_v128_load(wp + 8)));
              a3 = wasm_f32x4_add(
                  a3, wasm_f32x4_mul(wasm_v128_load(xp + 12), wasm_v128_load(wp + 12)));
            }
          }
          if (relu) {
            a0 = wasm_f32x4_max(a0, zero);
            a1 = wasm_f32x4_max(a1, zero);
            a2 = wasm_f32x4_max(a2, zero);
            a3 = wasm_f32x4_max(a3, zero);
          }
          wasm_v128_store(yp + ch, a0);
          wasm_v128_store(yp + ch + 4, a1);
          wasm_v128_store(yp + ch + 8, a2);
          wasm_v128_store(yp + ch + 12, a3);
        }
        for (; ch < c; ch += 4) {
          v128_t a0 = bias ? wasm_v128_load(bias + ch) : zero;
          for (int i = i0; i < i1; i++) {
            const float *xr = xb + ((iy0 + i) * wd + ix0) * c + ch;
            const float *wr = w + i * fw * c + ch;
            for (int j = j0; j < j1; j++) {
              a0 = wasm_f32x4_add(a0,
                                  wasm_f32x4_mul(wasm_v128_load(xr + j * c), wasm_v128_load(wr + j * c)));
            }
          }
          if (relu) a0 = wasm_f32x4_max(a0, zero);
          wasm_v128_store(yp + ch, a0);
        }
      }
    }
  }
}

/* The taps i (step s) that reach input row n from an output row inside [0, o): i = (n + p) mod s
 * upwards, with 0 <= (n + p - i) / s < o. */
static inline int grad_tap_lo(int n, int s, int p, int o) {
  const int lo = max_int(0, n + p - (o - 1) * s);
  const int r = (n + p) % s;
  return lo + ((r - lo % s) % s + s) % s;
}
static inline int grad_tap_hi(int n, int p, int f) { return min_int(f, n + p + 1); }

/* dx = the input gradient of depthwise_conv2d, from dy [batch, oh, ow, c]; every dx element is
 * written (0 where no tap reaches it). */
EXPORT("depthwise_conv2d_input_grad")
void depthwise_conv2d_input_grad(const float *dy, const float *w, float *dx, int batch, int h,
                                 int wd, int c, int fh, int fw, int sh, int sw, int pt, int pl,
                                 int oh, int ow) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int b = 0; b < batch; b++) {
    const float *dyb = dy + b * oh * ow * c;
    for (int iy = 0; iy < h; iy++) {
      const int i0 = grad_tap_lo(iy, sh, pt, oh), i1 = grad_tap_hi(iy, pt, fh);
      for (int ix = 0; ix < wd; ix++) {
        const int j0 = grad_tap_lo(ix, sw, pl, ow), j1 = grad_tap_hi(ix, pl, fw);
        float *dxp = dx + ((b * h + iy) * wd + ix) * c;
        int ch = 0;
        for (; ch + 16 <= c; ch += 16) {
          v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero;
          for (int i = i0; i < i1; i += sh) {
            const int oy = (iy + pt - i) / sh;
            for (int j = j0; j < j1; j += sw) {
              const int ox = (ix + pl - j) / sw;
              const float *gp = dyb + (oy * ow + ox) * c + ch;
              const float *wp = w + (i * fw + j) * c + ch;
              a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(gp), wasm_v128_load(wp)));
              a1 = wasm_f32x4_add(a1,
                                  wasm_f32x4_mul(wasm_v128_load(gp + 4), wasm_v128_load(wp + 4)));
              a2 = wasm_f32x4_add(a2,
                                  wasm_f32x4_mul(wasm_v128_load(gp + 8), wasm_v128_load(wp + 8)));
              a3 = wasm_f32x4_add(
                  a3, wasm_f32x4_mul(wasm_v128_load(gp + 12), wasm_v128_load(wp + 12)));
            }
          }
          wasm_v128_store(dxp + ch, a0);
          wasm_v128_store(dxp + ch + 4, a1);
          wasm_v128_store(dxp + ch + 8, a2);
          wasm_v128_store(dxp + ch + 12, a3);
        }
        for (; ch < c; ch += 4) {
          v128_t a0 = zero;
          for (int i = i0; i < i1; i += sh) {
            const int oy = (iy + pt - i) / sh;
            for (int j = j0; j < j1; j += sw) {
              const int ox = (ix + pl - j) / sw;
              a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(dyb + (oy * ow + ox) * c + ch),
                                                     wasm_v128_load(w + (i * fw + j) * c + ch)));
            }
          }
          wasm_v128_store(dxp + ch, a0);
        }
      }
    }
  }
}

/* dw [fh, fw, c] = the filter gradient of depthwise_conv2d, from x and dy. Scratch: `acc`, fh*fw*c
 * floats (one image's sums), and `total`, fh*fw*c doubles (the sum over images). */
EXPORT("depthwise_conv2d_filter_grad")
void depthwise_conv2d_filter_grad(const float *x, const float *dy, float *dw, int batch, int h,
                                  int wd, int c, int fh, int fw, int sh, int sw, int pt, int pl,
                                  int oh, int ow, float *acc, double *total) {
  const int n = fh * fw * c;
  for (int k = 0; k < n; k++) total[k] = 0.0;
  for (int b = 0; b < batch; b++) {
    for (int k = 0; k < n; k++) acc[k] = 0.0f;
    const float *xb = x + b * h * wd * c;
    for (int oy = 0; oy < oh; oy++) {
      const int i0 = tap_lo(oy, sh, pt), i1 = tap_hi(oy, sh, pt, fh, h);
      const int iy0 = oy * sh - pt;
      for (int ox = 0; ox < ow; ox++) {
        const int j0 = tap_lo(ox, sw, pl), j1 = tap_hi(ox, sw, pl, fw, wd);
        const int ix0 = ox * sw - pl;
        const float *gp = dy + ((b * oh + oy) * ow + ox) * c;
        int ch = 0;
        for (; ch + 16 <= c; ch += 16) {
          const v128_t g0 = wasm_v128_load(gp + ch), g1 = wasm_v128_load(gp + ch + 4);
          const v128_t g2 = wasm_v128_load(gp + ch + 8), g3 = wasm_v128_load(gp + ch + 12);
          for (int i = i0; i < i1; i++) {
            const float *xr = xb + ((iy0 + i) * wd + ix0) * c + ch;
            float *ar = acc + i * fw * c + ch;
            for (int j = j0; j < j1; j++) {
              const float *xp = xr + j * c;
              float *ap = ar + j * c;
              wasm_v128_store(ap, wasm_f32x4_add(wasm_v128_load(ap),
                                                 wasm_f32x4_mul(wasm_v128_load(xp), g0)));
              wasm_v128_store(ap + 4, wasm_f32x4_add(wasm_v128_load(ap + 4),
                                                     wasm_f32x4_mul(wasm_v128_load(xp + 4), g1)));
              wasm_v128_store(ap + 8, wasm_f32x4_add(wasm_v128_load(ap + 8),
                                                     wasm_f32x4_mul(wasm_v128_load(xp + 8), g2)));
              wasm_v128_store(ap + 12,
                              wasm_f32x4_add(wasm_v128_load(ap + 12),
                                             wasm_f32x4_mul(wasm_v128_load(xp + 12), g3)));
            }
          }
        }
        for (; ch < c; ch += 4) {
          const v128_t g0 = wasm_v128_load(gp + ch);
          for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
              const float *xp = xb + ((iy0 + i) * wd + ix0 + j) * c + ch;
              float *ap = acc + (i * fw + j) * c + ch;
              wasm_v128_store(ap, wasm_f32x4_add(wasm_v128_load(ap),
                                                 wasm_f32x4_mul(wasm_v128_load(xp), g0)));
            }
          }
        }
      }
    }
    for (int k = 0; k < n; k++) total[k] += acc[k];
  }
  for (int k = 0; k < n; k++) dw[k] = (float)total[k];
}
