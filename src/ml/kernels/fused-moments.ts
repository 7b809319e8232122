import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { batchNormGradInputs } from './batch-norm-grad.ts';
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
const core = createRequire(import.meta.url)('@tensorflow/tfjs-core') as {
  moments: Moments;
  batchNorm2d: BatchNormNd;
  batchNorm3d: BatchNormNd;
  batchNorm4d: BatchNormNd;
};

/** tfjs-core's `batchNorm2d`/`3d`/`4d` (tfjs-layers' batch norm calls them by rank). */
type BatchNormNd = (
  x: tf.Tensor,
  mean: tf.Tensor | tf.TensorLike,
  variance: tf.Tensor | tf.TensorLike,
  offset?: tf.Tensor | tf.TensorLike,
  scale?: tf.Tensor | tf.TensorLike,
  varianceEpsilon?: number,
) => tf.Tensor;

const BATCH_NORM_RANKS = ['batchNorm2d', 'batchNorm3d', 'batchNorm4d'] as const;

let original: Moments | undefined;
let originalBatchNorms: Record<(typeof BATCH_NORM_RANKS)[number], BatchNormNd> | undefined;

/** The wasm kernel of batch norm's gradient in training (statistics of the batch itself). */
export const BATCH_NORM_TRAIN_GRAD = 'CnnClassroomBatchNormTrainGrad';

/**
 * For each mean that {@link fusedMoments} returned, the x and the variance of that call: a batch
 * norm given exactly these is batch norm in training, whose full gradient is one kernel.
 */
const statsOf = new WeakMap<tf.Tensor, { readonly x: tf.Tensor; readonly variance: tf.Tensor }>();

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
  statsOf.set(mean!, { x, variance: variance! });
  return { mean: mean!, variance: variance! };
}

/**
 * `CnnClassroomBatchNormTrainGrad` on wasm: inputs `{dy, x: [..., C], mean, variance, scale:
 * [C]}` (float32, mean and variance the batch statistics of x itself), attr `varianceEpsilon`;
 * outputs `[dx, dScale, dOffset]` of `y = (x − mean(x))·scale·r + offset` with
 * `r = 1/√(variance(x) + ε)`, the statistics' dependence on x included (Ioffe & Szegedy, ICML
 * 2015, §3): `dx = scale·r·(dy − Σdy/N − (x − mean)·r²·Σdy(x − mean)/N)`,
 * `dScale = r·Σdy(x − mean)`, `dOffset = Σdy`, over the `N` rows: one pass for the sums
 * (`batch_norm_sums`) and one writing dx (`batch_norm_train_dx`). tfjs-core's chain (the
 * `FusedBatchNorm` gradient, the moments' gradient through `Unpack` and `Pack`, and the `Add` of
 * the two input gradients) reads and writes the full tensor eight times.
 *
 * @throws {Error} on another backend or when its memory is not reachable
 */
function batchNormTrainGradWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { dy, x, mean, backend, kernels, c, rows, r, s } = batchNormGradInputs(
    args,
    BATCH_NORM_TRAIN_GRAD,
  );
  const dx = backend.makeOutput([...x.shape], 'float32');
  const dScale = backend.makeOutput([c], 'float32');
  const dOffset = backend.makeOutput([c], 'float32');
  if (rows > 0 && c > 0) {
    const { sumDy, sumDyXm } = kernels.batchNormSums(
      heapOffset(backend, dy),
      heapOffset(backend, x),
      rows,
      c,
      heapOffset(backend, mean),
    );
    const a = new Float32Array(c);
    const b = new Float32Array(c);
    const k = new Float32Array(c);
    for (let j = 0; j < c; j++) {
      const sr = s[j]! * r[j]!;
      a[j] = sr;
      b[j] = (-sr * r[j]! * r[j]! * sumDyXm[j]!) / rows;
      k[j] = (-sr * sumDy[j]!) / rows;
    }
    kernels.batchNormTrainDx(
      heapOffset(backend, dy),
      heapOffset(backend, x),
      rows,
      c,
      heapOffset(backend, mean),
      [a, b, k],
      heapOffset(backend, dx),
    );
    heapFloats(backend, dScale).set(
      Float32Array.from({ length: c }, (_, j) => r[j]! * sumDyXm[j]!),
    );
    heapFloats(backend, dOffset).set(Float32Array.from({ length: c }, (_, j) => sumDy[j]!));
  } else {
    heapFloats(backend, dScale).fill(0);
    heapFloats(backend, dOffset).fill(0);
  }
  return [dx, dScale, dOffset];
}

/**
 * tfjs-core's `batchNorm2d`/`3d`/`4d` with one gradient kernel for batch norm in training: when
 * `mean` and `variance` are what {@link fusedMoments} returned for this very `x` (tfjs-layers'
 * batch norm in training does exactly that), and offset and scale are float32 `[C]` tensors,
 * the normalization is one op of `(x, scale, offset)` whose gradient is the full one, the
 * statistics' share included (`CnnClassroomBatchNormTrainGrad`), so the moments' gradient and
 * the `Add` of two input gradients never run. The statistics stay differentiable for any other
 * use (the moving averages use them without gradients). Anything else runs `base`.
 */
function trainingBatchNorm(base: BatchNormNd): BatchNormNd {
  return (x, mean, variance, offset, scale, varianceEpsilon) => {
    const stats = mean instanceof tf.Tensor ? statsOf.get(mean) : undefined;
    const c = x.shape.at(-1) ?? 0;
    const perChannel = (t: unknown): t is tf.Tensor =>
      t instanceof tf.Tensor &&
      t.dtype === 'float32' &&
      t.rank === 1 &&
      (t.shape as number[])[0] === c;
    const backend = tf.backend();
    if (
      stats === undefined ||
      stats.x !== x ||
      stats.variance !== variance ||
      !perChannel(mean) ||
      !perChannel(variance) ||
      !perChannel(offset) ||
      !perChannel(scale) ||
      !isWasmBackend(backend) ||
      heapKernels(backend) === undefined ||
      tf.getKernel(BATCH_NORM_TRAIN_GRAD, 'wasm') === undefined
    ) {
      return base(x, mean, variance, offset, scale, varianceEpsilon);
    }
    const epsilon = varianceEpsilon ?? 0.001;
    const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, sc, off] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
      const save = args[3] as tf.GradSaveFunc;
      const value = tf.batchNorm(input, mean, variance, off, sc, epsilon);
      save([input, mean, variance, sc]);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf
            .engine()
            .runKernel<tf.Tensor[]>(
              BATCH_NORM_TRAIN_GRAD,
              { dy, x: saved[0]!, mean: saved[1]!, variance: saved[2]!, scale: saved[3]! },
              { varianceEpsilon: epsilon },
            ),
      };
    });
    return normalize(x, scale, offset);
  };
}

/**
 * Makes tfjs-layers' batch norm (and every `tf.moments` call through tfjs-core's exports) use
 * {@link fusedMoments}, tfjs-core's `batchNorm2d`/`3d`/`4d` (as tfjs-layers reads them) the
 * one-gradient training batch norm over its statistics (see `trainingBatchNorm`), and registers
 * their kernels on wasm; idempotent.
 */
export function registerFusedMoments(): void {
  if (original !== undefined) {
    return;
  }
  if (tf.getKernel(BATCH_NORM_TRAIN_GRAD, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: BATCH_NORM_TRAIN_GRAD,
      backendName: 'wasm',
      kernelFunc: batchNormTrainGradWasm,
    });
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
  originalBatchNorms = {
    batchNorm2d: core.batchNorm2d,
    batchNorm3d: core.batchNorm3d,
    batchNorm4d: core.batchNorm4d,
  };
  for (const name of BATCH_NORM_RANKS) {
    core[name] = trainingBatchNorm(originalBatchNorms[name]);
  }
}

/** Puts tfjs-core's moments and batch norms back (tests and benchmarks); the kernel stays registered. */
export function unregisterFusedMoments(): void {
  if (original !== undefined) {
    core.moments = original;
    original = undefined;
  }
  if (originalBatchNorms !== undefined) {
    Object.assign(core, originalBatchNorms);
    originalBatchNorms = undefined;
  }
}
