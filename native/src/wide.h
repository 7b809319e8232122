/* The wide-vector kernels of wide.c (x86-64 only); each returns 0 when it does not take the
 * shapes given, and the caller then runs the 128-bit kernel. */
#ifndef CNN_CLASSROOM_WIDE_H
#define CNN_CLASSROOM_WIDE_H

#define CC_WIDE_DECLARE(sfx)                                                                       \
  int wide_winograd_conv3x3##sfx(const float *x, const float *u, const float *bias, int relu,      \
                                 float *y, int batch, int h, int w, int ci_n, int co_n, int pt,    \
                                 int pl, int oh, int ow);                                          \
  int wide_winograd_filter_grad3x3##sfx(const float *x, const float *dy, float *dw, int batch,    \
                                        int h, int w, int ci_n, int co_n, int pt, int pl, int oh,  \
                                        int ow);                                           \
  int wide_pointwise##sfx(const float *x, const float *w, const float *bias, int relu, float *y,   \
                          int m, int ci_n, int co_n);                                              \
  int wide_pointwise_input_grad##sfx(const float *dy, const float *w, float *dx, int m, int ci_n,  \
                                     int co_n);                                                    \
  int wide_pointwise_filter_grad##sfx(const float *x, const float *dy, float *dw, int m, int ci_n, \
                                      int co_n);                                                   \
  int wide_depthwise##sfx(const float *x, const float *w, const float *bias, int relu, float *y,   \
                          int batch, int h, int wd, int c, int fh, int fw, int sh, int sw, int pt, \
                          int pl, int oh, int ow);                                                 \
  int wide_depthwise_input_grad##sfx(const float *dy, const float *w, float *dx, int batch, int h, \
                                     int wd, int c, int fh, int fw, int sh, int sw, int pt,        \
                                     int pl, int oh, int ow);                                      \
  int wide_depthwise_filter_grad##sfx(const float *x, const float *dy, float *dw, int batch,       \
                                      int h, int wd, int c, int fh, int fw, int sh, int sw,        \
                                      int pt, int pl, int oh, int ow);                     \
  int wide_conv_gemm##sfx(const float *x, const float *w, const float *bias, int relu, float *y,   \
                          int batch, int h, int wd, int ci_n, int fh, int fw, int co_n, int sh,   \
                          int sw, int pt, int pl, int oh, int ow);                                 \
  int wide_conv_gemm_filter_grad##sfx(const float *x, const float *dy, float *dw, int batch,      \
                                      int h, int wd, int ci_n, int fh, int fw, int co_n, int sh,  \
                                      int sw, int pt, int pl, int oh, int ow);                     \
  int wide_conv_gemm_input_grad##sfx(const float *dy, const float *w, float *dx, int batch,       \
                                     int h, int wd, int ci_n, int fh, int fw, int co_n, int sh,   \
                                     int sw, int pt, int pl, int oh, int ow);

CC_WIDE_DECLARE(_avx512)
CC_WIDE_DECLARE(_avx2)

#endif
