import type * as tf from '@tensorflow/tfjs';
import { isWasmBackend } from './wasm-heap.ts';

/** The part of tfjs-backend-wasm's `BackendWasm` that shares a tensor's memory. */
interface RefCountingBackend {
  incRef(dataId: tf.DataId): void;
}

function canShare(backend: unknown): backend is RefCountingBackend {
  return typeof (backend as Partial<RefCountingBackend> | null)?.incRef === 'function';
}

/**
 * `Identity` on the wasm backend without a copy: the output shares the input's memory (one more
 * reference), as the cpu backend's `Identity` and the wasm backend's own `Reshape` do. Tensors are
 * immutable, so sharing is safe. tfjs-backend-wasm 4.22 copies instead, which cost ResNet-20
 * (batch 128) 635 copies and about 80 ms a training step, mostly gradients passed through
 * unchanged. String tensors go to `original`.
 *
 * Input `{x}`; output: the same data, shape and dtype.
 */
export function createSharedIdentityKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs;
    if (x === undefined || x.dtype === 'string' || !canShare(args.backend)) {
      return original.kernelFunc(args);
    }
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/**
 * `Cast` on the wasm backend: to the tensor's own dtype, the input shared as by
 * {@link createSharedIdentityKernel} (the cpu backend does the same); to `bool`, 1 where the value
 * is not 0, as tfjs-core defines it. tfjs-backend-wasm 4.22 copies in both cases, and its copy into
 * bytes wraps instead (`cast([1.7, -2.2, 3], 'bool')` gave `[1, 254, 3]`); the same-dtype copies
 * cost a ResNet-20 training step 76 casts, about 36 ms, nearly all float32 to float32 in batch
 * norm. Other conversions go to `original`.
 *
 * Input `{x}`, attr `dtype`; output `x` as `dtype`.
 */
export function createSharedCastKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs;
    const dtype = args.attrs?.dtype;
    const backend = args.backend;
    if (x === undefined || x.dtype === 'string') return original.kernelFunc(args);
    if (dtype === x.dtype && canShare(backend)) {
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    if (
      dtype === 'bool' &&
      (x.dtype === 'float32' || x.dtype === 'int32') &&
      isWasmBackend(backend)
    ) {
      const out = backend.makeOutput([...x.shape], 'bool');
      const size = x.shape.reduce((p, d) => p * d, 1);
      const heap = backend.wasm.HEAPU8.buffer;
      const from = backend.dataIdMap.get(x.dataId)!.memoryOffset;
      const input =
        x.dtype === 'float32'
          ? new Float32Array(heap, from, size)
          : new Int32Array(heap, from, size);
      const output = new Uint8Array(heap, backend.dataIdMap.get(out.dataId)!.memoryOffset, size);
      for (let i = 0; i < size; i++) output[i] = input[i] !== 0 ? 1 : 0;
      return out;
    }
    return original.kernelFunc(args);
  };
}
