import * as tf from '@tensorflow/tfjs';
import { checkShapes, geometry, size } from './conv-geometry.ts';
import { heapKernels, winogradFits, type HeapKernels } from './heap-kernels.ts';
import type { ConvGeometry } from './wasm-gemm.ts';
import { heapOffset, isWasmBackend, type WasmBackendLike } from './wasm-heap.ts';

/**
 * The fewest channels on either side for which Winograd beat XNNPACK's direct convolution
 * (bench/kernels.ts): its transforms cost per channel what the product saves per channel pair.
 */
const WINOGRAD_MIN_CHANNELS = 8;

/**
 * Whether the Winograd kernels take this convolution: 3×3 at stride 1 with channel counts they
 * fit (see {@link winogradFits}) and at least {@link WINOGRAD_MIN_CHANNELS}, and operands free of
 * NaN and ±Infinity. A transform mixes a tile's 36 inputs, so one non-finite value would spread
 * NaN over its 4×4 outputs where the direct convolution confines it to the outputs it reaches.
 */
export function takesWinograd(
  g: ConvGeometry,
  direction: 'forward' | 'input-grad',
  kernels: HeapKernels,
  backend: WasmBackendLike,
  operands: readonly tf.TensorInfo[],
): boolean {
  return (
    winogradFits(g, direction) &&
    Math.min(g.inChannels, g.outChannels) >= WINOGRAD_MIN_CHANNELS &&
    operands.every((t) => kernels.allFinite(heapOffset(backend, t), size(t.shape)))
  );
}

/**
 * `Conv2D` and `FusedConv2D` on the wasm backend: 3×3 stride-1 convolutions by Winograd's
 * F(4×4, 3×3) (Lavin & Gray, CVPR 2016; `wasm/winograd.c`, in place on the backend's heap), with
 * `FusedConv2D`'s bias and ReLU applied as each output tile is written. ResNet-20's convs at
 * batch 128: 16 channels 26.8 → 15.6 ms, 32 channels 22.2 → 8.6 ms, 64 channels 24.4 → 7.7 ms
 * against XNNPACK. Inputs `{x: [b, h, w, inC], filter: [3, 3, inC, outC], bias?: [outC]}`, attrs
 * as in tfjs-core; output `[b, oh, ow, outC]`. Anything else (other filters or strides, other
 * activations, PReLU weights, a broadcast bias, non-float32 or non-finite operands) goes to
 * `original`.
 *
 * @throws {Error} when x and the filter disagree
 */
export function createFastConv2DKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs;
    const attrs = args.attrs ?? {};
    const backend = args.backend;
    const activation = attrs.activation ?? 'linear';
    if (
      x === undefined ||
      filter === undefined ||
      x.dtype !== 'float32' ||
      filter.dtype !== 'float32' ||
      x.shape.length !== 4 ||
      filter.shape.length !== 4 ||
      preluActivationWeights !== undefined ||
      (activation !== 'linear' && activation !== 'relu') ||
      (bias !== undefined &&
        (bias.dtype !== 'float32' ||
          bias.shape.length !== 1 ||
          bias.shape[0] !== filter.shape[3])) ||
      !isWasmBackend(backend)
    ) {
      return original.kernelFunc(args);
    }
    const g = geometry(x.shape, filter.shape, attrs, tf.Conv2D);
    const kernels = heapKernels(backend);
    if (
      g === undefined ||
      kernels === undefined ||
      !takesWinograd(g, 'forward', kernels, backend, bias ? [x, filter, bias] : [x, filter])
    ) {
      return original.kernelFunc(args);
    }
    const outShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
    checkShapes(g, x.shape, outShape, filter.shape, tf.Conv2D);
    const out = backend.makeOutput(outShape, 'float32');
    kernels.winogradConv3x3(
      g,
      heapOffset(backend, x),
      heapOffset(backend, filter),
      bias === undefined ? 0 : heapOffset(backend, bias),
      activation === 'relu',
      heapOffset(backend, out),
    );
    return out;
  };
}
