import type * as tf from '@tensorflow/tfjs';
import { ELEMENT_BYTES, MIN_COPY_BYTES, isWasmBackend } from './wasm-heap.ts';

/**
 * `Tile` on the wasm backend by `copyWithin` on the heap: x's contiguous inner block is copied
 * once, and each repeated axis then doubles what is already written (`log2(reps)` copies). That
 * is memmove speed where tfjs-backend-wasm 4.22's element-by-element loop took 1.6 s of a 5 s
 * ResNet-20 training step. It serves the broadcasts of gradients — `[1, 1, 1, C]` tiled to
 * `[B, H, W, C]` (batch norm, `Sum`/`Mean` over all but channels) or `[B, 1, 1, C]` (global
 * average pooling: 51 → 1 ms at `[128, 8, 8, 64]`) — and any tiling whose copies average at
 * least {@link MIN_COPY_BYTES}; others go to `original`.
 *
 * Input `{x}`, attr `reps` (one per axis); output `x.shape[i]·reps[i]`, x's dtype (float32, int32
 * or bool; others go to `original`).
 */
export function createFastTileKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs;
    const reps = args.attrs?.reps;
    const backend = args.backend;
    const bytes = x === undefined ? undefined : ELEMENT_BYTES[x.dtype];
    if (
      x === undefined ||
      bytes === undefined ||
      !Array.isArray(reps) ||
      reps.length !== x.shape.length ||
      !isWasmBackend(backend)
    ) {
      return original.kernelFunc(args);
    }
    const shape = x.shape;
    const r = reps as number[];
    const rank = shape.length;
    // The axes past the last repeated one are one contiguous block in x and in the output.
    let last = rank - 1;
    while (last >= 0 && r[last] === 1) {
      last--;
    }
    let blockBytes = bytes;
    for (let i = last + 1; i < rank; i++) {
      blockBytes *= shape[i] as number;
    }
    // copyWithin calls: one per block of x (an index of the axes up to `last`), and for each
    // repeated axis ⌈log2 reps⌉ doublings per index of the axes before it.
    let calls = 0;
    let prefix = 1;
    for (let i = 0; i <= last; i++) {
      calls += prefix * Math.ceil(Math.log2(Math.max(1, r[i] as number)));
      prefix *= shape[i] as number;
    }
    calls += prefix;
    const outShape = shape.map((d, i) => d * (r[i] as number));
    const totalBytes = outShape.reduce((p, d) => p * d, bytes);
    if (calls > 1 && totalBytes < MIN_COPY_BYTES * calls) {
      return original.kernelFunc(args);
    }
    const out = backend.makeOutput(outShape, x.dtype);
    if (totalBytes === 0) {
      return out;
    }
    // Byte strides of x and of the output, per axis.
    const inStride = new Array<number>(rank + 1).fill(bytes);
    const outStride = new Array<number>(rank + 1).fill(bytes);
    for (let i = rank - 1; i >= 0; i--) {
      inStride[i] = (inStride[i + 1] as number) * (shape[i] as number);
      outStride[i] = (outStride[i + 1] as number) * (outShape[i] as number);
    }
    const heap = backend.wasm.HEAPU8;
    const fill = (axis: number, src: number, dst: number): void => {
      if (axis > last) {
        heap.copyWithin(dst, src, src + blockBytes);
        return;
      }
      const d = shape[axis] as number;
      for (let m = 0; m < d; m++) {
        fill(
          axis + 1,
          src + m * (inStride[axis + 1] as number),
          dst + m * (outStride[axis + 1] as number),
        );
      }
      // One copy of x's slice along this axis is written; repeat it by doubling.
      const slice = d * (outStride[axis + 1] as number);
      const whole = slice * (r[axis] as number);
      for (let filled = slice; filled < whole; filled *= 2) {
        heap.copyWithin(dst + filled, dst, dst + Math.min(filled, whole - filled));
      }
    };
    fill(
      0,
      backend.dataIdMap.get(x.dataId)!.memoryOffset,
      backend.dataIdMap.get(out.dataId)!.memoryOffset,
    );
    return out;
  };
}
