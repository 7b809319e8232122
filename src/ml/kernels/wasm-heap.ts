import type * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's `BackendWasm` the GEMM kernels use. */
export interface WasmBackendLike {
  readonly wasm: { readonly HEAPF32: Float32Array; readonly HEAPU8: Uint8Array };
  readonly dataIdMap: { get(dataId: tf.DataId): { readonly memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/**
 * The float32 contents of a tensor on the wasm backend, as a view of the backend's heap: valid
 * only until the backend next allocates (its memory may grow and move).
 */
export function heapFloats(backend: WasmBackendLike, info: tf.TensorInfo): Float32Array {
  const entry = backend.dataIdMap.get(info.dataId);
  if (entry === undefined) {
    throw new Error('wasm tensor data not found (disposed?)');
  }
  const size = info.shape.reduce((p, d) => p * d, 1);
  const start = entry.memoryOffset / 4;
  return backend.wasm.HEAPF32.subarray(start, start + size);
}

/** The byte offset of a tensor's data on the wasm backend's heap (stable while it lives). */
export function heapOffset(backend: WasmBackendLike, info: tf.TensorInfo): number {
  const entry = backend.dataIdMap.get(info.dataId);
  if (entry === undefined) {
    throw new Error('wasm tensor data not found (disposed?)');
  }
  return entry.memoryOffset;
}

/** Whether a kernel's backend argument looks like tfjs-backend-wasm's. */
export function isWasmBackend(backend: unknown): backend is WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | null;
  return (
    b != null &&
    typeof b.makeOutput === 'function' &&
    b.dataIdMap != null &&
    b.wasm != null &&
    b.wasm.HEAPF32 instanceof Float32Array
  );
}

/**
 * The guard every `fast-*` kernel wrapper starts with: "float32 on wasm, else the original
 * kernel". Returns the wasm backend and the inputs `names`, or `undefined` when the backend is not
 * tfjs-backend-wasm's or one of those inputs is absent or not float32; the wrapper then runs the
 * kernel it replaces.
 * @example
 * const fast = float32OnWasm(args, ['dy', 'input']);
 * if (fast === undefined) return original.kernelFunc(args);
 * const { backend, inputs: { dy, input } } = fast;
 */
export function float32OnWasm<K extends string>(
  args: { readonly inputs: tf.NamedTensorInfoMap; readonly backend: unknown },
  names: readonly K[],
): { backend: WasmBackendLike; inputs: Record<K, tf.TensorInfo> } | undefined {
  const backend = args.backend;
  if (!isWasmBackend(backend)) return undefined;
  const inputs = {} as Record<K, tf.TensorInfo>;
  for (const name of names) {
    const t = args.inputs[name];
    if (t === undefined || t.dtype !== 'float32') return undefined;
    inputs[name] = t;
  }
  return { backend, inputs };
}

/** Bytes per element of the dtypes whose tensors the in-place copy kernels move (not strings). */
export const ELEMENT_BYTES: Partial<Record<tf.DataType, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
};

/**
 * Below this many bytes per `copyWithin` call on average, the in-place `Tile` and `Reverse` leave
 * the work to the backend's element loop (a call costs about as much as copying a few dozen
 * elements in the loop).
 */
export const MIN_COPY_BYTES = 64;
