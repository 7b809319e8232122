/*
 * The kernels of wasm/heap-kernels.c, wasm/winograd.c and wasm/depthwise.c as compiled natively,
 * once per instruction set (native/binding.gyp): CC_VARIANT(name) is the name a variant's copy
 * has (avx512_sum_rows, avx2_sum_rows, base_sum_rows), so that all fit in one addon.
 */
#ifndef CNN_CLASSROOM_KERNELS_H
#define CNN_CLASSROOM_KERNELS_H

#define CC_PASTE2(a, b) a##b
#define CC_PASTE(a, b) CC_PASTE2(a, b)

/* The exported functions, with their C signatures (the wasm exports' names and arguments). */
#define CC_KERNELS(X)                                                                              \
  X(void, sum_rows, (const float *, int, int, float *, double *))                                  \
  X(void, moments_rows, (const float *, int, int, float *, double *))                              \
  X(void, broadcast_rows, (int, const float *, int, int, const float *, float *, int))             \
  X(void, normalize_rows,                                                                          \
    (const float *, int, int, const float *, const float *, const float *, float *))               \
  X(void, batch_norm_grad,                                                                         \
    (const float *, const float *, int, int, const float *, const float *, const float *, float *, \
     float *, double *))                                                                           \
  X(void, batch_norm_sums,                                                                         \
    (const float *, const float *, int, int, const float *, float *, double *))                    \
  X(void, batch_norm_train_dx,                                                                     \
    (const float *, const float *, int, int, const float *, const float *, const float *,          \
     const float *, float *))                                                                      \
  X(void, max_pool_grad,                                                                           \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int, int))                                                                                    \
  X(void, conv2d_filter_grad_c1,                                                                   \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int, int, float *, float *, float *, double *))                                               \
  X(void, conv2d_direct,                                                                           \
    (const float *, const float *, const float *, int, float *, int, int, int, int, int, int, int, \
     int, int, int, int, int, int, float *, float *))                                              \
  X(void, adam_update,                                                                             \
    (const float *, const float *, const float *, const float *, int, float, float, float, float,  \
     float, float, float, float, float *, float *, float *))                                       \
  X(void, conv2d_input_grad_narrow,                                                                \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int, int, float *, float *, int *))                                                           \
  X(int, count_nonzero, (const float *, int))                                                      \
  X(void, conv2d_filter_grad_scatter,                                                              \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int, int, float *, double *, int *))                                                          \
  X(int, all_finite, (const float *, int))                                                         \
  X(void, clip_grad, (const float *, const float *, int, float, float, float *))                   \
  X(void, relu_grad, (const float *, const float *, int, float *))                                 \
  X(void, relu_clip_grad, (const float *, const float *, int, float, float *))                    \
  X(void, winograd_filter, (const float *, int, int, int, float *))                                \
  X(void, winograd_conv3x3,                                                                        \
    (const float *, const float *, const float *, int, float *, int, int, int, int, int, int, int, \
     int, int, float *, float *, float *))                                                         \
  X(void, winograd_filter_grad3x3,                                                                 \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, float *,   \
     float *, double *, float *))                                                                  \
  X(void, depthwise_conv2d,                                                                        \
    (const float *, const float *, const float *, int, float *, int, int, int, int, int, int, int, \
     int, int, int, int, int))                                                                     \
  X(void, depthwise_conv2d_input_grad,                                                             \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int))                                                                                         \
  X(void, depthwise_conv2d_filter_grad,                                                            \
    (const float *, const float *, float *, int, int, int, int, int, int, int, int, int, int, int, \
     int, float *, double *))

/* One variant's function pointers. */
struct cc_kernels {
#define CC_FIELD(ret, name, args) ret(*name) args;
  CC_KERNELS(CC_FIELD)
#undef CC_FIELD
};

#endif
