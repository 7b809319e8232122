import * as tf from '@tensorflow/tfjs';
import { checkShapes, geometry, size } from './conv-geometry.ts';
import { heapKernels, winogradFits, type HeapKernels } from './heap-kernels.ts';
import type { ConvGeometry } from './wasm-gemm.ts';
import { float32OnWasm, heapOffset, type WasmBackendLike } from './wasm-heap.ts';

/**
 * The fewest channels on either side Winograd takes: at 8 it still beat XNNPACK 2.4× (8 into 8
 * at 16×16, batch 128: 3.43 → 1.45 ms), but its transforms cost per channel what the product
 * saves per channel pair, and 4 input channels were not measured (up to 6 go to the direct
 * kernel).
 */
const WINOGRAD_MIN_CHANNELS = 8;

/**
 * The most input channels for which the direct convolution (`heap-kernels.c`'s `conv2d_direct`)
 * beat XNNPACK at stride 1, batch 128: 1 channel 5×5 into 6 (LeNet's conv1) 1.6–2.4 → 1.2–1.3 ms,
 * 6 channels 5×5 into 16 (conv2) 2.1–2.4 → 1.5–1.7, 3 channels 3×3 into 16 (ResNet-20's first)
 * 4.9–6.7 → 4.4–5.8; from 8 channels it lost (3×3 8 into 16: 1.5–1.8 against 2.5–3.2 ms).
 */
const DIRECT_MAX_CHANNELS = 6;

/**
 * The fewest output channels for the direct convolution: it fills SIMD lanes with 8 output
 * channels at a time, so 1 channel (6 into 1, 5×5: 10.4 against XNNPACK's 8.8 ms) wastes 7 of 8.
 */
const DIRECT_MIN_OUT_CHANNELS = 6;

/**
 * The most channels a Winograd convolution sums over (the conv's input channels; for the input
 * gradient its output channels). F(4×4, 3×3)'s transforms scale values by up to 100 before the
 * sum and back after it, so its rounding error relative to the output grows with the terms
 * summed: max|error| / max|output| on random normal data was 4–8·10⁻⁶ at 16–64 channels,
 * 1.75·10⁻⁵ at 256, past the 10⁻⁵ this project's kernels are held to against the cpu backend.
 * The filter gradient, which sums over tiles instead (2·10⁻⁶ at 64 channels), keeps to the same
 * input channels, the shapes measured.
 */
const WINOGRAD_MAX_SUMMED_CHANNELS = 64;

/**
 * The least share of the 4×4 tiles' outputs that must fall inside the image: a 2×2 output uses a
 * quarter of its tile, and 3×3 convs on AlexNet's 2×2 maps ran 3× slower than XNNPACK's (384
 * channels, batch 128: 152 against 48 ms); 5×5 maps (39%) still ran 1.36× faster.
 */
const WINOGRAD_MIN_TILE_USE = 3 / 8;

/** The share of its 4×4 tiles' outputs that an h × w output uses. */
function tileUse(h: number, w: number): number {
  return (h * w) / (16 * Math.ceil(h / 4) * Math.ceil(w / 4));
}

/**
 * Whether the Winograd kernels take this convolution or gradient: 3×3 at stride 1, with channel
 * counts they fit (see {@link winogradFits}), at least {@link WINOGRAD_MIN_CHANNELS} and at most
 * {@link WINOGRAD_MAX_SUMMED_CHANNELS} summed, an output that fills its tiles (see
 * {@link WINOGRAD_MIN_TILE_USE}), and operands free of NaN and ±Infinity. A transform mixes a
 * tile's 36 inputs, so one non-finite value would spread NaN over its 4×4 outputs where the
 * direct convolution confines it to the outputs it reaches.
 */
export function takesWinograd(
  g: ConvGeometry,
  kind: 'forward' | 'input-grad' | 'filter-grad',
  kernels: HeapKernels,
  backend: WasmBackendLike,
  operands: readonly tf.TensorInfo[],
): boolean {
  const inputGrad = kind === 'input-grad';
  const summed = inputGrad ? g.outChannels : g.inChannels;
  return (
    winogradFits(g, inputGrad ? 'input-grad' : 'forward') &&
    Math.min(g.inChannels, g.outChannels) >= WINOGRAD_MIN_CHANNELS &&
    summed <= WINOGRAD_MAX_SUMMED_CHANNELS &&
    (inputGrad ? tileUse(g.inHeight, g.inWidth) : tileUse(g.outHeight, g.outWidth)) >=
      WINOGRAD_MIN_TILE_USE &&
    operands.every((t) => kernels.allFinite(heapOffset(backend, t), size(t.shape)))
  );
}

/**
 * `Conv2D` and `FusedConv2D` on the wasm backend: 3×3 stride-1 convolutions by Winograd's
 * F(4×4, 3×3) (Lavin & Gray, CVPR 2016; `wasm/winograd.c`, in place on the backend's heap), with
 * `FusedConv2D`'s bias and ReLU applied as each output tile is written (ResNet-20's convs at
 * batch 128: 16 channels 26.8 → 15.6 ms, 32 channels 22.2 → 8.6 ms, 64 channels 24.4 → 7.7 ms
 * against XNNPACK), and stride-1 convolutions of up to {@link DIRECT_MAX_CHANNELS} input channels
 * into at least {@link DIRECT_MIN_OUT_CHANNELS} directly (`heap-kernels.c`'s `conv2d_direct`:
 * LeNet's conv1 and conv2, ResNet-20's first), and pointwise (1×1) convolutions by the native
 * wide product where it runs (see {@link HeapKernels.pointwiseFits}; MobileNet-fashion's), and
 * strided convolutions by the native wide im2col product where it runs (see
 * {@link HeapKernels.convGemmFits}; ResNet-20's 3×3 and 1×1 stride-2 convs at batch 128:
 * 13.3 → 7.1 ms from 16 channels into 32, 10.8 → 4.0 ms from
 * 32 into 64, CPU time, `bench/native-kernels.ts`). Inputs `{x: [b, h, w, inC], filter: [fh, fw, inC,
 * outC], bias?: [outC]}`, attrs as in tfjs-core; output `[b, oh, ow, outC]`. Anything else (other filters or strides, other activations, PReLU
 * weights, a broadcast bias, non-float32 operands, non-finite ones for Winograd) goes to
 * `original`.
 *
 * @throws {Error} when x and the filter disagree
 */
export function createFastConv2DKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['x', 'filter']);
    const { bias, preluActivationWeights } = args.inputs;
    const attrs = args.attrs ?? {};
    const activation = attrs.activation ?? 'linear';
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { x, filter },
    } = fast;
    if (
      x.shape.length !== 4 ||
      filter.shape.length !== 4 ||
      preluActivationWeights !== undefined ||
      (activation !== 'linear' && activation !== 'relu') ||
      (bias !== undefined &&
        (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== filter.shape[3]))
    ) {
      return original.kernelFunc(args);
    }
    const g = geometry(x.shape, filter.shape, attrs, tf.Conv2D);
    const kernels = heapKernels(backend);
    if (g === undefined || kernels === undefined) {
      return original.kernelFunc(args);
    }
    const pointwise = kernels.pointwiseFits(g);
    const direct =
      !pointwise &&
      g.inChannels <= DIRECT_MAX_CHANNELS &&
      g.outChannels >= DIRECT_MIN_OUT_CHANNELS &&
      g.strideHeight === 1 &&
      g.strideWidth === 1;
    const winograd =
      !pointwise &&
      !direct &&
      takesWinograd(g, 'forward', kernels, backend, bias ? [x, filter, bias] : [x, filter]);
    const gemm = !pointwise && !direct && !winograd && kernels.convGemmFits(g, 'forward');
    if (!pointwise && !direct && !winograd && !gemm) {
      return original.kernelFunc(args);
    }
    const outShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
    checkShapes(g, x.shape, outShape, filter.shape, tf.Conv2D);
    const out = backend.makeOutput(outShape, 'float32');
    const operands = [
      g,
      heapOffset(backend, x),
      heapOffset(backend, filter),
      bias === undefined ? 0 : heapOffset(backend, bias),
      activation === 'relu',
      heapOffset(backend, out),
    ] as const;
    if (pointwise) {
      kernels.pointwiseConv(...operands);
    } else if (gemm) {
      kernels.convGemm(...operands);
    } else if (direct) {
      kernels.conv2dDirect(...operands);
    } else {
      kernels.winogradConv3x3(...operands);
    }
    return out;
  };
}
