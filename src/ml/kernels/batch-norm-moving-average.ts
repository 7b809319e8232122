import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { heapFloats, isWasmBackend } from './wasm-heap.ts';

/** The name of the one-kernel update of a batch-norm layer's moving mean and variance. */
export const MOVING_AVERAGES = 'CnnClassroomMovingAverages';

/**
 * tfjs-core's exports object as tfjs-layers reads it (a CommonJS property read at each call), so
 * that the batch norm below goes through the same `moments` and `batchNorm4d` as tfjs-layers'
 * own (`fused-moments.ts` replaces them there).
 */
const core = createRequire(import.meta.url)('@tensorflow/tfjs-core') as Record<
  'moments' | 'batchNorm2d' | 'batchNorm3d' | 'batchNorm4d',
  unknown
>;

/** The cpu backend's parts the kernel uses. */
interface CpuBackendLike {
  readonly data: { get(dataId: tf.DataId): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

/**
 * `average − (average − value)·decay` per element, each operation rounded to float32 in
 * tfjs-layers' order (`tfc.sub`, `tfc.mul` by the float32 scalar `decay`, `tfc.sub`), so that it
 * matches those three kernels bit for bit on any backend. A double rounded to float32 after one
 * operation on float32 operands is the correctly rounded float32 result (53 ≥ 2·24 + 2 bits).
 */
function movingAverageInto(
  out: Float32Array,
  average: Float32Array,
  value: Float32Array,
  decay: number,
): void {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) {
    const a = average[i]!;
    out[i] = f(a - f(f(a - value[i]!) * decay));
  }
}

function checkInputs(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap | undefined) {
  const { movingMean, movingVariance, mean, variance } = inputs;
  const all = [movingMean, movingVariance, mean, variance];
  const size = (t: tf.TensorInfo) => t.shape.reduce((p, d) => p * d, 1);
  if (
    movingMean === undefined ||
    movingVariance === undefined ||
    mean === undefined ||
    variance === undefined ||
    all.some((t) => t!.dtype !== 'float32' || size(t!) !== size(movingMean))
  ) {
    throw new TypeError(
      `${MOVING_AVERAGES}: movingMean, movingVariance, mean and variance must be float32 of one size`,
    );
  }
  const decay = attrs?.['decay'];
  if (typeof decay !== 'number') {
    throw new TypeError(`${MOVING_AVERAGES}: attribute decay must be a number`);
  }
  return { tensors: [movingMean, movingVariance, mean, variance], decay: Math.fround(decay) };
}

/**
 * `CnnClassroomMovingAverages` on wasm: inputs `{movingMean, movingVariance, mean, variance}`
 * (float32 `[C]`), attr `decay` (`1 − momentum`); outputs `[movingMean', movingVariance']`, each
 * `average − (average − value)·decay`, written in JavaScript straight into the backend's heap
 * (C is a few dozen channels: the cost of a kernel here is its dispatch, not its arithmetic).
 *
 * @throws {TypeError} on other dtypes or sizes, or a missing attribute
 * @throws {Error} on another backend
 */
function movingAveragesWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { tensors, decay } = checkInputs(args.inputs, args.attrs);
  const backend = args.backend;
  if (!isWasmBackend(backend)) {
    throw new Error(`${MOVING_AVERAGES}: not a wasm backend`);
  }
  const [movingMean, movingVariance, mean, variance] = tensors as [
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
  ];
  const outs = [0, 1].map(() => backend.makeOutput([...movingMean.shape], 'float32')) as [
    tf.TensorInfo,
    tf.TensorInfo,
  ];
  // Views taken after the outputs exist: allocating may grow (and move) the heap.
  const view = (t: tf.TensorInfo) => heapFloats(backend, t);
  movingAverageInto(view(outs[0]), view(movingMean), view(mean), decay);
  movingAverageInto(view(outs[1]), view(movingVariance), view(variance), decay);
  return outs;
}

/** The same kernel on the cpu backend (the reference the wasm one is tested against). */
function movingAveragesCpu(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { tensors, decay } = checkInputs(args.inputs, args.attrs);
  const backend = args.backend as CpuBackendLike;
  const [mm, mv, m, v] = tensors.map((t) => {
    const values = backend.data.get(t.dataId)?.values;
    if (!(values instanceof Float32Array)) {
      throw new Error(`${MOVING_AVERAGES}: cpu tensor data not found`);
    }
    return values;
  }) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const outMean = new Float32Array(mm.length);
  const outVariance = new Float32Array(mv.length);
  movingAverageInto(outMean, mm, m, decay);
  movingAverageInto(outVariance, mv, v, decay);
  const shape = [...tensors[0]!.shape];
  return [outMean, outVariance].map((values) => backend.makeTensorInfo(shape, 'float32', values));
}

/** The parts of tfjs-layers' `BatchNormalization` layer that its training step reads. */
interface BatchNormLayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariableLike | null;
  beta: LayerVariableLike | null;
  movingMean: LayerVariableLike | null;
  movingVariance: LayerVariableLike | null;
  call: (
    this: BatchNormLayerLike,
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ) => tf.Tensor | tf.Tensor[];
}

interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

type Moments = (x: tf.Tensor, axes: number[]) => { mean: tf.Tensor; variance: tf.Tensor };
type BatchNormNd = (
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  offset: tf.Tensor,
  scale: tf.Tensor,
  varianceEpsilon: number,
) => tf.Tensor;

let patched: { proto: BatchNormLayerLike; call: BatchNormLayerLike['call'] } | undefined;

/**
 * tfjs-layers' `BatchNormalization.call` in training with the moving mean and variance updated
 * by one {@link MOVING_AVERAGES} kernel instead of six (`Sub`, `Mul`, `Sub` for each, plus two
 * scalar uploads): 105 kernels fewer per ResNet-20 step, a fixed cost each data-parallel replica
 * paid whatever its share of the batch. The normalization itself is tfjs-layers' own
 * (`moments` over every axis but the channels', then `batchNorm2d`/`3d`/`4d` by rank, both read
 * from tfjs-core's exports as tfjs-layers reads them), so outputs, gradients and moving
 * averages are bit for bit those of the original. Inference, other axes, a layer without
 * `center` or `scale`, other ranks and backends without the kernel run the original `call`.
 */
function fusedCall(
  this: BatchNormLayerLike,
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
): tf.Tensor | tf.Tensor[] {
  const original = patched!.call;
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  const training = kwargs['training'] === true;
  const rank = input?.rank ?? 0;
  const { gamma, beta, movingMean, movingVariance } = this;
  if (
    !training ||
    input === undefined ||
    rank < 2 ||
    rank > 4 ||
    (this.axis >= 0 ? this.axis : this.axis + rank) !== rank - 1 ||
    !this.center ||
    !this.scale ||
    gamma === null ||
    beta === null ||
    movingMean === null ||
    movingVariance === null ||
    tf.getKernel(MOVING_AVERAGES, tf.getBackend()) === undefined
  ) {
    return original.call(this, inputs, kwargs);
  }
  return tf.tidy(() => {
    const axes = Array.from({ length: rank - 1 }, (_, i) => i);
    const { mean, variance } = (core.moments as Moments)(input, axes);
    const batchNorm = core[`batchNorm${rank as 2 | 3 | 4}d`] as BatchNormNd;
    const normed = batchNorm(input, mean, variance, beta.read(), gamma.read(), this.epsilon);
    const [newMean, newVariance] = tf
      .engine()
      .runKernel<tf.Tensor[]>(
        MOVING_AVERAGES,
        { movingMean: movingMean.read(), movingVariance: movingVariance.read(), mean, variance },
        { decay: 1 - this.momentum },
      );
    movingMean.write(newMean!);
    movingVariance.write(newVariance!);
    return normed;
  });
}

/**
 * Registers {@link MOVING_AVERAGES} for the wasm and cpu backends and makes tfjs-layers' batch
 * norm layers use it in training (see `fusedCall`); idempotent.
 */
export function registerFusedMovingAverages(): void {
  const configs: [string, tf.KernelFunc][] = [
    ['wasm', movingAveragesWasm],
    ['cpu', movingAveragesCpu],
  ];
  for (const [backendName, kernelFunc] of configs) {
    if (tf.getKernel(MOVING_AVERAGES, backendName) === undefined) {
      tf.registerKernel({ kernelName: MOVING_AVERAGES, backendName, kernelFunc });
    }
  }
  if (patched !== undefined) {
    return;
  }
  const layer = tf.layers.batchNormalization({});
  const proto = Object.getPrototypeOf(layer) as BatchNormLayerLike;
  patched = { proto, call: proto.call };
  proto.call = fusedCall;
}

/** Puts tfjs-layers' own batch norm `call` back (tests and benchmarks); the kernel stays registered. */
export function unregisterFusedMovingAverages(): void {
  if (patched !== undefined) {
    patched.proto.call = patched.call;
    patched = undefined;
  }
}
