import * as tf from '@tensorflow/tfjs';
import { toShape4 } from './composite-kernel.ts';
import { checkShapes, geometry, size } from './conv-geometry.ts';
import { WasmGemm, wasmGemm, type ConvGeometry } from './wasm-gemm.ts';
import type { HeapKernels } from './heap-kernels.ts';
import { NARROW_FLOATS, heapKernels } from './heap-kernels.ts';
import { float32OnWasm, heapFloats, heapOffset, type WasmBackendLike } from './wasm-heap.ts';
import { takesWinograd } from './fast-conv.ts';

/** The in-place conv-gradient kernels of {@link HeapKernels}: a geometry and three heap offsets. */
type InPlaceConvKernel =
  | 'winogradFilterGrad3x3'
  | 'conv2dFilterGradC1'
  | 'conv2dFilterGradScatter'
  | 'winogradInputGrad3x3'
  | 'conv2dInputGradNarrow'
  | 'pointwiseFilterGrad'
  | 'pointwiseInputGrad'
  | 'convGemmFilterGrad'
  | 'convGemmInputGrad';

/**
 * Which in-place filter-gradient kernel is fastest for this convolution and gradient, as
 * measured at batch 128, or undefined for the GEMM: the native wide product for pointwise
 * convolutions where it runs (see {@link HeapKernels.pointwiseFits}; MobileNet-fashion's); Winograd for 3×3 stride-1 convolutions it
 * takes (see {@link takesWinograd}); for one input channel at stride 1 the dense one-channel
 * kernel (LeNet's conv1: 1.4–1.7 ms at any density, which the scatter beat only below 5%
 * nonzero); else a scatter over dy's nonzero entries when they are few (LeNet's conv2, 84% zeros
 * behind ReLU and 2×2 max pooling: 3.6 → 1.4 ms; it breaks even near 50% nonzero for 5×5 filters
 * over 6 channels), unless x holds NaN or ±Infinity (the scatter would drop their products with
 * dy's zeros).
 */
function filterGradKernel(
  g: ConvGeometry,
  kernels: HeapKernels,
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
): InPlaceConvKernel | undefined {
  if (kernels.pointwiseFits(g)) {
    return 'pointwiseFilterGrad';
  }
  if (takesWinograd(g, 'filter-grad', kernels, backend, [x, dy])) {
    return 'winogradFilterGrad3x3';
  }
  if (strided(g) && kernels.convGemmFits(g, 'filter-grad')) {
    return 'convGemmFilterGrad';
  }
  if (g.inChannels === 1 && g.strideHeight === 1 && g.strideWidth === 1) {
    return 'conv2dFilterGradC1';
  }
  const row = g.filterWidth * g.inChannels;
  if (row <= NARROW_FLOATS) {
    const n = size(dy.shape);
    const limit = row >= 16 ? 0.4 : 0.2;
    // Skipping dy's zeros drops their products with x, so a NaN or ±Infinity in x would not
    // reach the gradient as it does in TensorFlow (0·NaN = NaN): such an x takes a dense path.
    if (
      kernels.countNonzero(heapOffset(backend, dy), n) <= limit * n &&
      kernels.allFinite(heapOffset(backend, x), size(x.shape))
    ) {
      return 'conv2dFilterGradScatter';
    }
  }
  if (kernels.convGemmFits(g, 'filter-grad')) {
    return 'convGemmFilterGrad';
  }
  return undefined;
}

/**
 * Which in-place input-gradient kernel takes this convolution, or undefined for the others:
 * the native wide product for pointwise convolutions where it runs, Winograd for 3×3 stride-1 convolutions it takes (see {@link takesWinograd}), the narrow-row
 * scatter where it wins (see {@link takesNarrow}) unless the filter holds NaN or ±Infinity (the
 * scatter skips dy's zeros, dropping their products with the filter, which TensorFlow keeps).
 */
function inputGradKernel(
  g: ConvGeometry,
  kernels: HeapKernels,
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
): InPlaceConvKernel | undefined {
  if (kernels.pointwiseFits(g)) {
    return 'pointwiseInputGrad';
  }
  if (takesWinograd(g, 'input-grad', kernels, backend, [dy, filter])) {
    return 'winogradInputGrad3x3';
  }
  if (takesNarrow(g) && kernels.allFinite(heapOffset(backend, filter), size(filter.shape))) {
    return 'conv2dInputGradNarrow';
  }
  if (kernels.convGemmFits(g, 'input-grad')) {
    return 'convGemmInputGrad';
  }
  return undefined;
}

/** Whether a convolution has a stride over 1 (the native im2col product's share; see filterGradKernel). */
function strided(g: ConvGeometry): boolean {
  return g.strideHeight > 1 || g.strideWidth > 1;
}

/** Runs an in-place kernel on `a` and `b` into a new float32 output of `shape`. */
function runInPlace(
  backend: WasmBackendLike,
  kernels: HeapKernels,
  kernel: InPlaceConvKernel,
  g: ConvGeometry,
  [a, b]: readonly [tf.TensorInfo, tf.TensorInfo],
  shape: readonly number[],
): tf.TensorInfo {
  const out = backend.makeOutput([...shape], 'float32');
  kernels[kernel](g, heapOffset(backend, a), heapOffset(backend, b), heapOffset(backend, out));
  return out;
}

/**
 * `Conv2DBackpropFilter` on the wasm backend as im2col plus the WebAssembly SIMD GEMM
 * (`wasm/gemm.c`, `conv2d_filter_grad`): `dW = im2col(x)ᵀ · dy`, summed over chunks of output
 * pixels that stay in cache. 2.5–3× faster than the composite of `conv2d-backprop-filter.ts`
 * on ResNet-20's 3×3 convs (bench/kernels.ts). 3×3 stride-1 convolutions take Winograd's
 * F(4×4, 3×3) run backwards (`wasm/winograd.c`, see {@link takesWinograd}; ResNet-20's at batch
 * 128: about 27 → 6.4–10.8 ms); narrow filters with a mostly-zero `dy`, and one-channel inputs
 * at stride 1, take the in-place kernels of `heap-kernels.c` (see {@link filterGradKernel}).
 * Inputs `{x: [b, h, w, inC], dy: [b, oh, ow, outC]}`, attrs as in tfjs-core; output
 * `filterShape`. Anything but float32 NHWC goes to `original`.
 *
 * @throws {Error} when x, dy and `filterShape` disagree
 */
export function createFastConv2DBackpropFilterKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['x', 'dy']);
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { x, dy },
    } = fast;
    const attrs = args.attrs ?? {};
    const filterShape = toShape4(attrs.filterShape, 'filterShape', tf.Conv2DBackpropFilter);
    const g = geometry(x.shape, filterShape, attrs, tf.Conv2DBackpropFilter);
    if (g === undefined) {
      return original.kernelFunc(args);
    }
    checkShapes(g, x.shape, dy.shape, filterShape, tf.Conv2DBackpropFilter);
    const kernels = heapKernels(backend);
    const inPlace = kernels && filterGradKernel(g, kernels, backend, x, dy);
    if (kernels !== undefined && inPlace !== undefined) {
      return runInPlace(backend, kernels, inPlace, g, [x, dy], filterShape);
    }
    const gemm = wasmGemm();
    const dwSize = size(filterShape);
    const [offX = 0, offDy = 0, offDw = 0, offCol = 0] = gemm.reserve([
      size(x.shape),
      size(dy.shape),
      dwSize,
      WasmGemm.colFloats(g),
    ]);
    gemm.view(offX, size(x.shape)).set(heapFloats(backend, x));
    gemm.view(offDy, size(dy.shape)).set(heapFloats(backend, dy));
    gemm.conv2dFilterGrad(g, offX, offDy, offDw, offCol);
    const out = backend.makeOutput([...filterShape], 'float32');
    heapFloats(backend, out).set(gemm.view(offDw, dwSize));
    return out;
  };
}

/**
 * Whether the narrow-row scatter (`heap-kernels.c`'s `conv2d_input_grad_narrow`) beats the other
 * paths: measured faster (bench/kernels.ts) only for unpadded stride-1 convolutions whose filter
 * rows fill at least 7 of its 8 SIMD accumulators and whose filters are at least 5×5 (LeNet's 5×5
 * over 6 channels: 6.6 → 2.4 ms at batch 128, where the transposed-conv composite also multiplies
 * a wide zero border; 5×5 over 6 channels into 32: 14.5 → 11.2 ms); 3×3 over 8 channels, 5×5
 * over 4 or 2×2 over 16 lose to XNNPACK (1.1–2×), strided ones to the GEMM.
 */
function takesNarrow(g: ConvGeometry): boolean {
  const row = g.filterWidth * g.inChannels;
  return (
    row > NARROW_FLOATS - 8 &&
    row <= NARROW_FLOATS &&
    g.filterHeight >= 5 &&
    g.filterWidth >= 5 &&
    g.strideHeight === 1 &&
    g.strideWidth === 1 &&
    g.padTop === 0 &&
    g.padLeft === 0 &&
    g.outHeight === g.inHeight - g.filterHeight + 1 &&
    g.outWidth === g.inWidth - g.filterWidth + 1
  );
}

/**
 * `Conv2DBackpropInput` on the wasm backend: 3×3 stride-1 convolutions by Winograd's
 * F(4×4, 3×3) over dy with the rotated filter (`wasm/winograd.c`, see {@link takesWinograd};
 * ResNet-20's at batch 128: about 26 → 8–11 ms), narrow unpadded filters (see
 * {@link takesNarrow}) by an in-place scatter, otherwise GEMM plus col2im,
 * `dx = col2im(dy · Wᵀ)`, the latter used only for strided convolutions, where it beats the
 * zero-interleaving composite of `conv2d-backprop-input.ts` (4–7×); at stride 1 that composite
 * runs on XNNPACK's forward conv and is as fast. Inputs `{dy, filter}`, attrs as in tfjs-core;
 * output `inputShape`.
 */
export function createFastConv2DBackpropInputKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['dy', 'filter']);
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { dy, filter },
    } = fast;
    const attrs = args.attrs ?? {};
    const inputShape = toShape4(attrs.inputShape, 'inputShape', tf.Conv2DBackpropInput);
    const g = geometry(inputShape, filter.shape, attrs, tf.Conv2DBackpropInput);
    if (g === undefined) {
      return original.kernelFunc(args);
    }
    checkShapes(g, inputShape, dy.shape, filter.shape, tf.Conv2DBackpropInput);
    const kernels = heapKernels(backend);
    const inPlace = kernels && inputGradKernel(g, kernels, backend, dy, filter);
    if (kernels !== undefined && inPlace !== undefined) {
      return runInPlace(backend, kernels, inPlace, g, [dy, filter], inputShape);
    }
    if (g.strideHeight === 1 && g.strideWidth === 1) {
      return original.kernelFunc(args);
    }
    const gemm = wasmGemm();
    const dxSize = size(inputShape);
    const [offDy = 0, offW = 0, offDx = 0, offCol = 0] = gemm.reserve([
      size(dy.shape),
      size(filter.shape),
      dxSize,
      WasmGemm.colFloats(g),
    ]);
    gemm.view(offDy, size(dy.shape)).set(heapFloats(backend, dy));
    gemm.view(offW, size(filter.shape)).set(heapFloats(backend, filter));
    gemm.conv2dInputGrad(g, offDy, offW, offDx, offCol);
    const out = backend.makeOutput([...inputShape], 'float32');
    heapFloats(backend, out).set(gemm.view(offDx, dxSize));
    return out;
  };
}
