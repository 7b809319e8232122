/*
 * cnn_classroom_kernels: a Node-API addon running the project's C kernels (wasm/heap-kernels.c,
 * wasm/winograd.c, wasm/depthwise.c) natively, in place on tfjs-backend-wasm's heap.
 *
 * Each export has the name and arguments of the WebAssembly export it stands in for, preceded by
 * the heap: fn(heap: ArrayBuffer, ...args), where pointer arguments are byte offsets into the heap
 * (0 meaning none) and the rest numbers. The heap is the backend's WebAssembly.Memory buffer,
 * passed afresh on every call (memory.grow detaches the old buffer and may move the data), and
 * its address is taken on every call. No argument may exceed the buffer's length (a coarse guard:
 * the kernel wrappers in src/ml/kernels/ check shapes as for the wasm kernels).
 *
 * The instruction set is chosen once, at load, from what the CPU supports: AVX-512 (F, VL, BW,
 * DQ), AVX2 with FMA, or the x86-64 baseline (SSE2); NEON on 64-bit ARM. `isa` names it.
 */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "wide.h"

#if defined(__x86_64__) || defined(_M_X64)
extern const struct cc_kernels avx512_kernels, avx2_kernels, base_kernels;
#define CC_X86 1
#else
extern const struct cc_kernels base_kernels;
#endif

static const struct cc_kernels *kernels;
static const char *isa;
/* The wide-vector kernels of wide.c for this CPU (0: none, 16: AVX-512, 8: AVX2), and whether
 * they run (setWide turns them off, for comparisons with the 128-bit build). */
static int wide_width;
static int wide_on = 1;

#define MAX_ARGS 24

/* The heap's address and length, and the numeric arguments after it. NULL with a pending
 * exception on a bad call. */
static uint8_t *begin(napi_env env, napi_callback_info info, size_t n, double *out, size_t *len) {
  napi_value argv[MAX_ARGS + 1];
  size_t argc = MAX_ARGS + 1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != n + 1) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return NULL;
  }
  bool is_buffer = false;
  napi_is_arraybuffer(env, argv[0], &is_buffer);
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "the first argument must be the heap's ArrayBuffer");
    return NULL;
  }
  void *data = NULL;
  if (napi_get_arraybuffer_info(env, argv[0], &data, len) != napi_ok || data == NULL) {
    napi_throw_error(env, NULL, "the heap's ArrayBuffer is detached");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (napi_get_value_double(env, argv[i + 1], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "kernel arguments must be numbers");
      return NULL;
    }
    if (!(out[i] <= (double)*len)) {
      napi_throw_range_error(env, NULL, "argument outside the heap");
      return NULL;
    }
  }
  return (uint8_t *)data;
}

/* Converts argument i: a heap offset to a pointer (0 to NULL), or an int or float. */
#define PTR(i) ((void *)(a[i] == 0 ? NULL : base + (size_t)a[i]))
#define INT(i) ((int)a[i])
#define FLT(i) ((float)a[i])

#define WRAP(name, n, ...)                                                                         \
  static napi_value w_##name(napi_env env, napi_callback_info info) {                             \
    double a[MAX_ARGS];                                                                            \
    size_t len = 0;                                                                                \
    uint8_t *base = begin(env, info, n, a, &len);                                                  \
    if (base == NULL) return NULL;                                                                 \
    kernels->name(__VA_ARGS__);                                                                    \
    return NULL;                                                                                   \
  }

#define WRAP_INT(name, n, ...)                                                                     \
  static napi_value w_##name(napi_env env, napi_callback_info info) {                             \
    double a[MAX_ARGS];                                                                            \
    size_t len = 0;                                                                                \
    uint8_t *base = begin(env, info, n, a, &len);                                                  \
    if (base == NULL) return NULL;                                                                 \
    napi_value result;                                                                             \
    napi_create_int32(env, kernels->name(__VA_ARGS__), &result);                                   \
    return result;                                                                                 \
  }

#define P13 INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), INT(14), INT(15)

WRAP(sum_rows, 5, PTR(0), INT(1), INT(2), PTR(3), PTR(4))
WRAP(moments_rows, 5, PTR(0), INT(1), INT(2), PTR(3), PTR(4))
WRAP(broadcast_rows, 7, INT(0), PTR(1), INT(2), INT(3), PTR(4), PTR(5), INT(6))
WRAP(normalize_rows, 7, PTR(0), INT(1), INT(2), PTR(3), PTR(4), PTR(5), PTR(6))
WRAP(batch_norm_grad, 10, PTR(0), PTR(1), INT(2), INT(3), PTR(4), PTR(5), PTR(6), PTR(7), PTR(8),
     PTR(9))
WRAP(batch_norm_sums, 7, PTR(0), PTR(1), INT(2), INT(3), PTR(4), PTR(5), PTR(6))
WRAP(batch_norm_train_dx, 9, PTR(0), PTR(1), INT(2), INT(3), PTR(4), PTR(5), PTR(6), PTR(7),
     PTR(8))
WRAP(max_pool_grad, 16, PTR(0), PTR(1), PTR(2), P13)
WRAP(conv2d_filter_grad_c1, 20, PTR(0), PTR(1), PTR(2), P13, PTR(16), PTR(17), PTR(18), PTR(19))
WRAP(conv2d_direct, 20, PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6), INT(7), INT(8),
     INT(9), INT(10), INT(11), INT(12), INT(13), INT(14), INT(15), INT(16), INT(17), PTR(18),
     PTR(19))
WRAP(adam_update, 16, PTR(0), PTR(1), PTR(2), PTR(3), INT(4), FLT(5), FLT(6), FLT(7), FLT(8),
     FLT(9), FLT(10), FLT(11), FLT(12), PTR(13), PTR(14), PTR(15))
WRAP(conv2d_input_grad_narrow, 19, PTR(0), PTR(1), PTR(2), P13, PTR(16), PTR(17), PTR(18))
WRAP_INT(count_nonzero, 2, PTR(0), INT(1))
WRAP(conv2d_filter_grad_scatter, 19, PTR(0), PTR(1), PTR(2), P13, PTR(16), PTR(17), PTR(18))
WRAP_INT(all_finite, 2, PTR(0), INT(1))
WRAP(clip_grad, 6, PTR(0), PTR(1), INT(2), FLT(3), FLT(4), PTR(5))
WRAP(relu_grad, 4, PTR(0), PTR(1), INT(2), PTR(3))
WRAP(relu_clip_grad, 5, PTR(0), PTR(1), INT(2), FLT(3), PTR(4))
WRAP(winograd_filter, 5, PTR(0), INT(1), INT(2), INT(3), PTR(4))
/* Winograd: the wide kernels where the CPU and the channels allow, else the 128-bit ones. */
static napi_value w_winograd_conv3x3(napi_env env, napi_callback_info info) {
  double a[MAX_ARGS];
  size_t len = 0;
  uint8_t *base = begin(env, info, 17, a, &len);
  if (base == NULL) return NULL;
  int done = 0;
#ifdef CC_X86
  if (wide_on && wide_width == 16)
    done = wide_winograd_conv3x3_avx512(PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6),
                                        INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13));
  else if (wide_on && wide_width == 8)
    done = wide_winograd_conv3x3_avx2(PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6),
                                      INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13));
#endif
  if (!done)
    kernels->winograd_conv3x3(PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6), INT(7),
                              INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), PTR(14),
                              PTR(15), PTR(16));
  return NULL;
}

static napi_value w_winograd_filter_grad3x3(napi_env env, napi_callback_info info) {
  double a[MAX_ARGS];
  size_t len = 0;
  uint8_t *base = begin(env, info, 16, a, &len);
  if (base == NULL) return NULL;
  int done = 0;
#ifdef CC_X86
  if (wide_on && wide_width == 16)
    done = wide_winograd_filter_grad3x3_avx512(PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5),
                                               INT(6), INT(7), INT(8), INT(9), INT(10), INT(11));
  else if (wide_on && wide_width == 8)
    done = wide_winograd_filter_grad3x3_avx2(PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5),
                                             INT(6), INT(7), INT(8), INT(9), INT(10), INT(11));
#endif
  if (!done)
    kernels->winograd_filter_grad3x3(PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5), INT(6),
                                     INT(7), INT(8), INT(9), INT(10), INT(11), PTR(12), PTR(13),
                                     PTR(14), PTR(15));
  return NULL;
}

/* Pointwise (1×1, stride 1) convolutions, native only (wide.c): fn(heap, ...) → 1 when done, 0
 * when this CPU or these channels have no wide kernel (then nothing was written). */
#ifdef CC_X86
#define WIDE_CALL(name, ...)                                                                       \
  (!wide_on ? 0                                                                                   \
   : wide_width == 16 ? name##_avx512(__VA_ARGS__)                                                \
   : wide_width == 8  ? name##_avx2(__VA_ARGS__)                                                  \
                      : 0)
#else
#define WIDE_CALL(name, ...) 0
#endif

#define WRAP_WIDE(export_name, name, n, ...)                                                       \
  static napi_value w_##export_name(napi_env env, napi_callback_info info) {                      \
    double a[MAX_ARGS];                                                                            \
    size_t len = 0;                                                                                \
    uint8_t *base = begin(env, info, n, a, &len);                                                  \
    if (base == NULL) return NULL;                                                                 \
    (void)base;                                                                                    \
    napi_value result;                                                                             \
    napi_create_int32(env, WIDE_CALL(name, __VA_ARGS__), &result);                                 \
    return result;                                                                                 \
  }

/* Depthwise convolutions: the wide kernels where the CPU and the channels allow, else the
 * 128-bit ones. */
#define WRAP_WIDE_FIRST(name, wide, n, wide_args, args)                                            \
  static napi_value w_##name(napi_env env, napi_callback_info info) {                             \
    double a[MAX_ARGS];                                                                            \
    size_t len = 0;                                                                                \
    uint8_t *base = begin(env, info, n, a, &len);                                                  \
    if (base == NULL) return NULL;                                                                 \
    if (!WIDE_CALL wide_args) kernels->name args;                                                  \
    return NULL;                                                                                   \
  }

WRAP_WIDE_FIRST(depthwise_conv2d, wide_depthwise, 17,
                (wide_depthwise, PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6), INT(7),
                 INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), INT(14), INT(15), INT(16)),
                (PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6), INT(7), INT(8), INT(9),
                 INT(10), INT(11), INT(12), INT(13), INT(14), INT(15), INT(16)))
WRAP_WIDE_FIRST(depthwise_conv2d_input_grad, wide_depthwise_input_grad, 15,
                (wide_depthwise_input_grad, PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5),
                 INT(6), INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), INT(14)),
                (PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9),
                 INT(10), INT(11), INT(12), INT(13), INT(14)))
WRAP_WIDE_FIRST(depthwise_conv2d_filter_grad, wide_depthwise_filter_grad, 17,
                (wide_depthwise_filter_grad, PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5),
                 INT(6), INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), INT(14)),
                (PTR(0), PTR(1), PTR(2), INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9),
                 INT(10), INT(11), INT(12), INT(13), INT(14), PTR(15), PTR(16)))

WRAP_WIDE(pointwise_conv, wide_pointwise, 8, PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5),
          INT(6), INT(7))
WRAP_WIDE(pointwise_input_grad, wide_pointwise_input_grad, 6, PTR(0), PTR(1), PTR(2), INT(3),
          INT(4), INT(5))
WRAP_WIDE(pointwise_filter_grad, wide_pointwise_filter_grad, 6, PTR(0), PTR(1), PTR(2), INT(3),
          INT(4), INT(5))

/* General convolutions as chunked im2col products (wide.c), geometry as geometryArgs gives it:
 * fn(heap, x|dy, w|dy, out, [bias, relu,] batch, h, w, inC, fh, fw, outC, sh, sw, pt, pl, oh,
 * ow) → 1 when done, 0 when not taken. */
WRAP_WIDE(conv_gemm, wide_conv_gemm, 18, PTR(0), PTR(1), PTR(2), INT(3), PTR(4), INT(5), INT(6),
          INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13), INT(14), INT(15), INT(16),
          INT(17))
WRAP_WIDE(conv_gemm_filter_grad, wide_conv_gemm_filter_grad, 16, PTR(0), PTR(1), PTR(2), INT(3),
          INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13),
          INT(14), INT(15))
WRAP_WIDE(conv_gemm_input_grad, wide_conv_gemm_input_grad, 16, PTR(0), PTR(1), PTR(2), INT(3),
          INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10), INT(11), INT(12), INT(13),
          INT(14), INT(15))

/* wideActive(): the wide kernels' channels per vector (16, 8), or 0 when none run. */
static napi_value w_wideActive(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, wide_on ? wide_width : 0, &result);
  return result;
}

/* setWide(on: boolean): turns the wide kernels on or off (all threads); returns whether they
 * were on. A CPU without AVX2 has none, and then it changes nothing. */
static napi_value w_setWide(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  bool on = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "setWide takes one boolean");
    return NULL;
  }
  napi_value result;
  napi_get_boolean(env, wide_on != 0, &result);
  wide_on = on ? 1 : 0;
  return result;
}


static void choose(void) {
#ifdef CC_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
    kernels = &avx512_kernels;
    isa = "avx512";
    wide_width = 16;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernels = &avx2_kernels;
    isa = "avx2";
    wide_width = 8;
  } else {
    kernels = &base_kernels;
    isa = "sse2";
  }
#elif defined(__aarch64__)
  kernels = &base_kernels;
  isa = "neon";
#else
  kernels = &base_kernels;
  isa = "generic";
#endif
}

#define EXPORT_FN(name) {#name, NULL, w_##name, NULL, NULL, NULL, napi_enumerable, NULL},

static napi_value init(napi_env env, napi_value exports) {
  choose();
  napi_value isa_value;
  napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &isa_value);
  napi_value wide_value;
  napi_create_int32(env, wide_width, &wide_value);
  napi_property_descriptor props[] = {
      EXPORT_FN(sum_rows) EXPORT_FN(moments_rows) EXPORT_FN(broadcast_rows) EXPORT_FN(normalize_rows)
      EXPORT_FN(batch_norm_grad) EXPORT_FN(batch_norm_sums) EXPORT_FN(batch_norm_train_dx)
      EXPORT_FN(max_pool_grad) EXPORT_FN(conv2d_filter_grad_c1)
      EXPORT_FN(conv2d_direct) EXPORT_FN(adam_update) EXPORT_FN(conv2d_input_grad_narrow)
      EXPORT_FN(count_nonzero) EXPORT_FN(conv2d_filter_grad_scatter) EXPORT_FN(all_finite)
      EXPORT_FN(clip_grad) EXPORT_FN(relu_grad) EXPORT_FN(relu_clip_grad) EXPORT_FN(winograd_filter) EXPORT_FN(winograd_conv3x3)
      EXPORT_FN(winograd_filter_grad3x3) EXPORT_FN(depthwise_conv2d)
      EXPORT_FN(depthwise_conv2d_input_grad) EXPORT_FN(depthwise_conv2d_filter_grad)
      EXPORT_FN(setWide) EXPORT_FN(wideActive) EXPORT_FN(pointwise_conv) EXPORT_FN(pointwise_input_grad)
      EXPORT_FN(pointwise_filter_grad) EXPORT_FN(conv_gemm) EXPORT_FN(conv_gemm_filter_grad)
      EXPORT_FN(conv_gemm_input_grad)
      {"isa", NULL, NULL, NULL, NULL, isa_value, napi_enumerable, NULL},
      {"wideLanes", NULL, NULL, NULL, NULL, wide_value, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
