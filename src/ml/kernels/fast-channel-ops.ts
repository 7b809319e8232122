import type * as tf from '@tensorflow/tfjs';
import { heapKernels, type BroadcastOp } from './heap-kernels.ts';
import { float32OnWasm, heapOffset as offsetOf } from './wasm-heap.ts';

/** Below this many channels the SIMD kernels gain nothing over the backend's. */
const MIN_CHANNELS = 4;

/**
 * The fewest elements for which a same-shape binary op runs in `broadcast_rows` (one call's
 * overhead against the backend's loop; ResNet-20's residual sums have 0.5–2 M).
 */
const MIN_SAME_SHAPE = 4096;

/**
 * Whether the normalized `axis` attribute of a reduction over a tensor of this shape names
 * exactly the leading axes `[0, rank - 1)`, the per-channel reduction of an NHWC tensor.
 */
function reducesLeadingAxes(shape: readonly number[], axis: unknown): boolean {
  const rank = shape.length;
  const axes = (Array.isArray(axis) ? (axis as unknown[]) : [axis]).map((a) =>
    typeof a === 'number' && a < 0 ? a + rank : a,
  );
  const unique = new Set(axes);
  if (rank < 2 || unique.size !== rank - 1 || unique.size !== axes.length) {
    return false;
  }
  for (let i = 0; i < rank - 1; i++) {
    if (!unique.has(i)) {
      return false;
    }
  }
  return true;
}

/**
 * `Sum` (or `Mean`) over every axis but the last, the per-channel reductions of batch-norm
 * moments and gradients and of conv/dense bias gradients, in place on the wasm heap by
 * `heap-kernels.c`'s `sum_rows` (tfjs-backend-wasm 4.22 transposes the reduced axes to the end
 * first: 4–6 ms for `[128, 32, 32, 16]`, see docs/engine-speed.md). Inputs `{x}`, attrs
 * `{axis, keepDims}` as in tfjs-core; output `[c]`, or `[1, …, 1, c]` with `keepDims` (over zero
 * rows: zeros, as on the cpu backend). Other axes, dtypes and fewer than 4 channels go to
 * `original`.
 */
function createChannelReduceKernel(original: tf.KernelConfig, mean: boolean): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['x']);
    const attrs = args.attrs ?? {};
    if (fast === undefined || !reducesLeadingAxes(fast.inputs.x.shape, attrs.axis)) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { x },
    } = fast;
    const c = x.shape[x.shape.length - 1]!;
    const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    const kernels = heapKernels(backend);
    if (kernels === undefined || c < MIN_CHANNELS) {
      return original.kernelFunc(args);
    }
    const out = backend.makeOutput(
      attrs.keepDims === true ? [...x.shape.slice(0, -1).map(() => 1), c] : [c],
      'float32',
    );
    const at = offsetOf(backend, out);
    if (rows === 0) {
      // Zeros, as the cpu backend gives for an empty sum and mean; tfjs-backend-wasm 4.22
      // returned whatever its heap held there.
      backend.wasm.HEAPF32.fill(0, at / 4, at / 4 + c);
      return out;
    }
    kernels.sumRows(offsetOf(backend, x), rows, c, at);
    if (mean) {
      const sums = backend.wasm.HEAPF32.subarray(at / 4, at / 4 + c);
      for (let j = 0; j < c; j++) {
        sums[j] = sums[j]! / rows;
      }
    }
    return out;
  };
}

/** See {@link createChannelReduceKernel}. */
export function createFastSumKernel(original: tf.KernelConfig): tf.KernelFunc {
  return createChannelReduceKernel(original, false);
}

/** See {@link createChannelReduceKernel}; the mean is each channel's sum divided by the rows. */
export function createFastMeanKernel(original: tf.KernelConfig): tf.KernelFunc {
  return createChannelReduceKernel(original, true);
}

/** The channel count when `v` broadcasts along every axis but the last of `full`, else 0. */
function channelVectorOf(full: readonly number[], v: readonly number[]): number {
  const c = full.at(-1);
  if (c === undefined || v.length === 0 || v.length > full.length || v.at(-1) !== c) {
    return 0;
  }
  return v.slice(0, -1).every((d) => d === 1) && full.slice(0, -1).some((d) => d !== 1) ? c : 0;
}

/**
 * A float32 binary op (`Add`, `Sub`, `Multiply`, `RealDiv`) where one operand is a per-channel
 * vector, `[c]` or `[1, …, 1, c]`, broadcast over a full tensor `[…, c]` — batch norm's scale
 * and shift and their gradients, conv and dense biases — in place on the wasm heap by
 * `heap-kernels.c`'s `broadcast_rows` (tfjs-backend-wasm 4.22's generic broadcasting loop took
 * 2.9 ms for `[128, 32, 32, 16] · [16]`), and also where both operands have the same shape
 * (at least MIN_SAME_SHAPE elements: a residual block's sum and the tape's sums of two
 * gradients, which tfjs-backend-wasm 4.22 ran through its broadcasting loop too). Bit for bit
 * the backend's results. Inputs `{a, b}`; output the full operand's shape. Other shapes and dtypes go to `original`.
 */
export function createFastBroadcastKernel(
  op: BroadcastOp,
): (original: tf.KernelConfig) => tf.KernelFunc {
  return (original) => (args) => {
    const fast = float32OnWasm(args, ['a', 'b']);
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { a, b },
    } = fast;
    if (
      a.shape.length > 0 &&
      a.shape.length === b.shape.length &&
      a.shape.every((d, i) => d === b.shape[i])
    ) {
      // Same shapes (a residual block's sum, the tape's sum of two gradients): one SIMD pass
      // over the flat arrays, as a single row of n channels.
      const n = a.shape.reduce((p, d) => p * d, 1);
      const kernels = n >= MIN_SAME_SHAPE ? heapKernels(backend) : undefined;
      if (kernels === undefined) {
        return original.kernelFunc(args);
      }
      const out = backend.makeOutput([...a.shape], 'float32');
      kernels.broadcastRows(
        op,
        offsetOf(backend, a),
        1,
        n,
        offsetOf(backend, b),
        offsetOf(backend, out),
        false,
      );
      return out;
    }
    const cB = channelVectorOf(a.shape, b.shape);
    const cA = cB === 0 ? channelVectorOf(b.shape, a.shape) : 0;
    const c = cB || cA;
    const kernels = c >= MIN_CHANNELS ? heapKernels(backend) : undefined;
    if (kernels === undefined) {
      return original.kernelFunc(args);
    }
    const [full, v] = cB !== 0 ? [a, b] : [b, a];
    const rows = full.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    const out = backend.makeOutput([...full.shape], 'float32');
    if (rows > 0) {
      kernels.broadcastRows(
        op,
        offsetOf(backend, full),
        rows,
        c,
        offsetOf(backend, v),
        offsetOf(backend, out),
        cA !== 0,
      );
    }
    return out;
  };
}

/**
 * `FusedBatchNorm` (`(x − mean)·scale / √(variance + ε) + offset`, per channel) on the wasm
 * backend as one in-place pass of `heap-kernels.c`'s `normalize_rows`, `(x − mean)·a + offset`
 * with `a = scale / √(variance + ε)` per channel (computed in float64, then rounded), where
 * tfjs-backend-wasm 4.22 takes 7 ms for `[128, 32, 32, 16]`. The mean is subtracted first, so the
 * error stays relative to `|x − mean|` even for a mean far larger than the spread; the result
 * agrees with the backend's to a few float32 roundings, not bit for bit. Inputs `{x, mean,
 * variance, offset?, scale?}` with the per-channel ones of `c` values, attr `varianceEpsilon`;
 * output `x.shape`. Other shapes and dtypes go to `original`.
 */
export function createFastFusedBatchNormKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['x', 'mean', 'variance']);
    const { offset, scale } = args.inputs;
    const eps = args.attrs?.varianceEpsilon;
    const c = fast?.inputs.x.shape.at(-1) ?? 0;
    const perChannel = (t: tf.TensorInfo | undefined): boolean =>
      t === undefined || (t.dtype === 'float32' && channelVectorOf([2, c], t.shape) === c);
    if (
      fast === undefined ||
      typeof eps !== 'number' ||
      c < MIN_CHANNELS ||
      ![fast.inputs.mean, fast.inputs.variance, offset, scale].every(perChannel)
    ) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { x, mean, variance },
    } = fast;
    const kernels = heapKernels(backend);
    if (kernels === undefined) {
      return original.kernelFunc(args);
    }
    const values = (t: tf.TensorInfo): Float32Array => {
      const at = offsetOf(backend, t) / 4;
      return backend.wasm.HEAPF32.slice(at, at + c);
    };
    const [m, v] = [values(mean), values(variance)];
    const [o, s] = [offset && values(offset), scale && values(scale)];
    const a = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      a[j] = (s?.[j] ?? 1) / Math.sqrt(v[j]! + eps);
    }
    const out = backend.makeOutput([...x.shape], 'float32');
    const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    if (rows > 0) {
      kernels.normalizeRows(
        offsetOf(backend, x),
        rows,
        c,
        [m, a, o ?? new Float32Array(c)],
        offsetOf(backend, out),
      );
    }
    return out;
  };
}
