import * as tf from '@tensorflow/tfjs';
import { heapKernels, type AdamScalars } from './heap-kernels.ts';
import { heapOffset, isWasmBackend } from './wasm-heap.ts';

/** The name of the fused Adam kernel (this project's, not tfjs-core's). */
export const ADAM_UPDATE = 'CnnClassroomAdamUpdate';

/** The cpu backend's parts the kernel uses. */
interface CpuBackendLike {
  readonly data: { get(dataId: tf.DataId): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function scalarsOf(attrs: tf.NamedAttrMap): AdamScalars {
  const keys: (keyof AdamScalars)[] = [
    'beta1',
    'oneMinusBeta1',
    'beta2',
    'oneMinusBeta2',
    'correction1',
    'correction2',
    'epsilon',
    'negLearningRate',
  ];
  const out: Record<string, number> = {};
  for (const key of keys) {
    const value = attrs[key];
    if (typeof value !== 'number') {
      throw new TypeError(`${ADAM_UPDATE}: attribute ${key} must be a number`);
    }
    out[key] = Math.fround(value);
  }
  return out as unknown as AdamScalars;
}

function checkInputs(inputs: tf.NamedTensorInfoMap): tf.TensorInfo[] {
  const { value, m, v, gradient } = inputs;
  const all = [value, m, v, gradient];
  const size = (t: tf.TensorInfo) => t.shape.reduce((p, d) => p * d, 1);
  if (
    value === undefined ||
    m === undefined ||
    v === undefined ||
    gradient === undefined ||
    all.some((t) => t!.dtype !== 'float32' || size(t!) !== size(value))
  ) {
    throw new TypeError(`${ADAM_UPDATE}: value, m, v and gradient must be float32 of one size`);
  }
  return all as tf.TensorInfo[];
}

/**
 * One Adam step for one variable in a single pass on the wasm backend (`heap-kernels.c`'s
 * `adam_update`, in place on the heap) instead of tfjs-core's chain of eleven elementwise kernels,
 * bit for bit the same float32 results. Inputs `{value, m, v, gradient}` (float32, one size);
 * attrs {@link AdamScalars}; outputs `[value', m', v']` shaped like `value`.
 *
 * @throws {TypeError} on other dtypes or sizes, or a missing attribute
 * @throws {Error} when the backend's memory is unreachable (register only where it is)
 */
function adamWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const [value, m, v, gradient] = checkInputs(args.inputs) as [
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
  ];
  const backend = args.backend;
  if (!isWasmBackend(backend)) {
    throw new Error(`${ADAM_UPDATE}: not a wasm backend`);
  }
  const kernels = heapKernels(backend);
  if (kernels === undefined) {
    throw new Error(`${ADAM_UPDATE}: the wasm backend's memory is not reachable`);
  }
  const scalars = scalarsOf(args.attrs ?? {});
  const outs = [0, 1, 2].map(() => backend.makeOutput([...value.shape], 'float32'));
  const n = value.shape.reduce((p, d) => p * d, 1);
  if (n > 0) {
    const at = (t: tf.TensorInfo) => heapOffset(backend, t);
    kernels.adamUpdate(n, [at(value), at(m), at(v), at(gradient)], scalars, [
      at(outs[0]!),
      at(outs[1]!),
      at(outs[2]!),
    ]);
  }
  return outs;
}

/**
 * The same step on the cpu backend in JavaScript, every operation rounded to float32
 * (`Math.fround`) in tfjs-core's order, so it matches the cpu backend's kernel chain bit for bit.
 */
function adamCpu(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const infos = checkInputs(args.inputs);
  const backend = args.backend as CpuBackendLike;
  const [p, m, v, g] = infos.map((t) => {
    const values = backend.data.get(t.dataId)?.values;
    if (!(values instanceof Float32Array)) {
      throw new Error(`${ADAM_UPDATE}: cpu tensor data not found`);
    }
    return values;
  }) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const s = scalarsOf(args.attrs ?? {});
  const f = Math.fround;
  const n = p.length;
  const outP = new Float32Array(n);
  const outM = new Float32Array(n);
  const outV = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const nm = f(f(m[i]! * s.beta1) + f(gi * s.oneMinusBeta1));
    const nv = f(f(v[i]! * s.beta2) + f(f(gi * gi) * s.oneMinusBeta2));
    const step = f(f(nm / s.correction1) / f(f(Math.sqrt(f(nv / s.correction2))) + s.epsilon));
    outP[i] = f(step * s.negLearningRate) + p[i]!;
    outM[i] = nm;
    outV[i] = nv;
  }
  const shape = [...infos[0]!.shape];
  return [outP, outM, outV].map((values) => backend.makeTensorInfo(shape, 'float32', values));
}

/**
 * Registers {@link ADAM_UPDATE} for the wasm and cpu backends. Idempotent. Whether it can run
 * on the current backend is {@link adamUpdateAvailable}'s answer; where not (tfjs-node, a wasm
 * build whose heap this project cannot reach) `fused-adam.ts` keeps tfjs-core's Adam.
 */
export function registerAdamUpdateKernels(): void {
  const configs: [string, tf.KernelFunc][] = [
    ['wasm', adamWasm],
    ['cpu', adamCpu],
  ];
  for (const [backendName, kernelFunc] of configs) {
    if (tf.getKernel(ADAM_UPDATE, backendName) === undefined) {
      tf.registerKernel({ kernelName: ADAM_UPDATE, backendName, kernelFunc });
    }
  }
}

/**
 * Whether {@link ADAM_UPDATE} runs on the current backend: registered there and, on wasm, with
 * the backend's heap reachable by `heap-kernels.wasm`.
 */
export function adamUpdateAvailable(): boolean {
  const name = tf.getBackend();
  if (tf.getKernel(ADAM_UPDATE, name) === undefined) {
    return false;
  }
  const backend = tf.backend();
  return name !== 'wasm' || (isWasmBackend(backend) && heapKernels(backend) !== undefined);
}
