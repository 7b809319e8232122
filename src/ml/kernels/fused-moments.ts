import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { heapKernels } from './heap-kernels.ts';
import { heapFloats, heapOffset, isWasmBackend } from './wasm-heap.ts';

/** The wasm kernel computing the gradient of {@link fusedMoments} in one pass. */
export const MOMENTS_GRAD = 'CnnClassroomMomentsGrad';

type Moments = typeof tf.moments;

/**
 * tfjs-core's exports object as tfjs-layers reads it: its batch norm in training calls
 * `tfc.moments(x, reductionAxes)` through this object at every call (a CommonJS property read),
 * so replacing the property replaces the op for tfjs-layers too.
 */
const core = createRequire(import.meta.url)('@tensorflow/tfjs-core') as { moments: Moments };

let original: Moments | undefined;

/**
 * `CnnClassroomMomentsGrad` on wasm: inputs `{x: [..., C], stats: [2, C], dy: [2, C]}` (float32;
 * `stats` stacks the mean and the variance, `dy` their gradients), output float32
 * `dx = (x − mean)·(2·dvar/N) + dmean/N` over the `N` rows of `x`, in one in-place pass of
 * `heap-kernels.c`'s `normalize_rows` (the coefficients formed in float64, rounded to float32).
 *
 * @throws {Error} on another backend, when its memory is not reachable, or on a shape mismatch
 */
function momentsGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x, stats, dy } = args.inputs;
  const backend = args.backend;
  if (x === undefined || stats === undefined || dy === undefined) {
    throw new TypeError(`${MOMENTS_GRAD}: x, stats and dy are required`);
  }
  if (!isWasmBackend(backend)) {
    throw new Error(`${MOMENTS_GRAD}: not a wasm backend`);
  }
  const kernels = heapKernels(backend);
  if (kernels === undefined) {
    throw new Error(`${MOMENTS_GRAD}: the wasm backend's memory is not reachable`);
  }
  const c = x.shape.at(-1) ?? 0;
  if (stats.shape.join() !== `2,${c}` || dy.shape.join() !== `2,${c}`) {
    throw new Error(`${MOMENTS_GRAD}: stats and dy of shape [2, ${c}] expected`);
  }
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const out = backend.makeOutput([...x.shape], 'float32');
  if (rows > 0 && c > 0) {
    const m = heapFloats(backend, stats).slice(0, c);
    const g = heapFloats(backend, dy);
    const a = new Float32Array(c);
    const b = new Float32Array(c);
    for (let j = 0; j < c; j++) {
      a[j] = (2 * g[c + j]!) / rows;
      b[j] = g[j]! / rows;
    }
    kernels.normalizeRows(heapOffset(backend, x), rows, c, [m, a, b], heapOffset(backend, out));
  }
  return out;
}

/** The wasm kernel computing {@link fusedMoments}' statistics in two passes. */
export const MOMENTS = 'CnnClassroomMoments';

/**
 * `CnnClassroomMoments` on wasm: input `{x: [..., C]}` float32, output float32 `[2, C]`, the
 * per-channel mean and biased variance over every axis but the last, by `heap-kernels.c`'s
 * `moments_rows` (two passes in place on the heap; float64 across blocks of 256 rows).
 *
 * @throws {Error} on another backend or when its memory is not reachable
 */
function momentsWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs;
  const backend = args.backend;
  if (x === undefined) {
    throw new TypeError(`${MOMENTS}: x is required`);
  }
  if (!isWasmBackend(backend)) {
    throw new Error(`${MOMENTS}: not a wasm backend`);
  }
  const kernels = heapKernels(backend);
  if (kernels === undefined) {
    throw new Error(`${MOMENTS}: the wasm backend's memory is not reachable`);
  }
  const c = x.shape.at(-1) ?? 0;
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const out = backend.makeOutput([2, c], 'float32');
  if (c > 0) {
    if (rows > 0) {
      kernels.momentsRows(heapOffset(backend, x), rows, c, heapOffset(backend, out));
    } else {
      heapFloats(backend, out).fill(Number.NaN);
    }
  }
  return out;
}

/** Whether `axis` names every axis of a rank-`rank` tensor but the last, once each. */
function allButLast(axis: number | number[] | undefined, rank: number): boolean {
  if (axis === undefined || rank < 2) return false;
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
  const sorted = [...new Set(axes)].sort((p, q) => p - q);
  return sorted.length === rank - 1 && sorted.every((a, i) => a === i);
}

/**
 * `tf.moments(x, axes)` over every axis but the last (per-channel batch statistics, as batch
 * norm in training asks for them), with one gradient kernel instead of tfjs-core's chain: its
 * moments are `mean(x)` and `mean(square(x − mean))`, whose gradient runs through `Mean`,
 * `Square`, `Sub` and `Mean` again (two broadcasts, two products, a sum, a negation and two
 * additions over the full tensor; about a quarter of a ResNet-20 step on wasm). Here the gradient
 * is `dx = dmean/N + dvar·2(x − mean)/N` in one pass (`CnnClassroomMomentsGrad`), and the
 * forward pass one kernel too (`CnnClassroomMoments`: two passes over x in place instead of
 * tfjs-core's `Mean`, `Sub`, `Square` and `Mean`; within float32 rounding of tfjs-core's
 * statistics, and more accurate, since its sums end in float64). Other inputs (other backends, dtypes, axes, `keepDims`, fewer than
 * 4 channels) run tfjs-core's moments.
 *
 * @param x float32 `[..., C]`
 * @returns `mean` and `variance`, float32 `[C]`
 */
export function fusedMoments(
  x: tf.Tensor | tf.TensorLike,
  axis?: number | number[],
  keepDims = false,
): { mean: tf.Tensor; variance: tf.Tensor } {
  const base = original ?? core.moments;
  const backend = tf.backend();
  if (
    !(x instanceof tf.Tensor) ||
    x.dtype !== 'float32' ||
    keepDims ||
    !allButLast(axis, x.rank) ||
    (x.shape.at(-1) ?? 0) < 4 ||
    !isWasmBackend(backend) ||
    heapKernels(backend) === undefined
  ) {
    return base(x, axis, keepDims);
  }
  const packed = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const value = tf.engine().runKernel<tf.Tensor>(MOMENTS, { x: input });
    // The output itself, not the mean alone: tfjs-core counts any other new tensor kept past
    // the forward pass as a leak.
    save([input, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel<tf.Tensor>(MOMENTS_GRAD, { x: saved[0]!, stats: saved[1]!, dy }),
    };
  })(x);
  const [mean, variance] = tf.unstack(packed);
  packed.dispose();
  return { mean: mean!, variance: variance! };
}

/**
 * Makes tfjs-layers' batch norm (and every `tf.moments` call through tfjs-core's exports) use
 * {@link fusedMoments} and registers its two kernels on wasm; idempotent.
 */
export function registerFusedMoments(): void {
  if (original !== undefined) {
    return;
  }
  if (tf.getKernel(MOMENTS, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: MOMENTS, backendName: 'wasm', kernelFunc: momentsWasm });
  }
  if (tf.getKernel(MOMENTS_GRAD, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: MOMENTS_GRAD,
      backendName: 'wasm',
      kernelFunc: momentsGradWasm,
    });
  }
  original = core.moments;
  core.moments = fusedMoments;
}

/** Puts tfjs-core's moments back (tests and benchmarks); the kernel stays registered. */
export function unregisterFusedMoments(): void {
  if (original !== undefined) {
    core.moments = original;
    original = undefined;
  }
}
