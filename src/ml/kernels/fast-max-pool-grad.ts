import * as tf from '@tensorflow/tfjs';
import { toPad, toPair, toRounding } from './composite-kernel.ts';
import { convGeometryOf, wasmGemm } from './wasm-gemm.ts';
import { heapFloats, isWasmBackend } from './wasm-heap.ts';

/**
 * `MaxPoolGrad` on the wasm backend in C (`wasm/gemm.c`, `max_pool_grad`): one pass over the
 * windows, recomputing each maximum, with TensorFlow's semantics (first maximum in row-major
 * order, padding never wins, overlapping windows add). Replaces the tap-by-tap composite of
 * `max-pool-grad.ts` for overlapping windows (AlexNet's 3x3/2 pools: 1.6 s of a 5.6 s training
 * step in that composite's slices and masks) and the tiled one alike. Inputs `{dy, input,
 * output}` (output unused), attrs as in tfjs-core.
 */
export function createFastMaxPoolGradKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs;
    const attrs = args.attrs ?? {};
    const backend = args.backend;
    if (
      dy === undefined ||
      input === undefined ||
      dy.dtype !== 'float32' ||
      input.dtype !== 'float32' ||
      !isWasmBackend(backend)
    ) {
      return original.kernelFunc(args);
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      toPair(attrs.filterSize, 'filterSize', tf.MaxPoolGrad),
      toPair(attrs.strides, 'strides', tf.MaxPoolGrad),
      1,
      toPad(attrs.pad, tf.MaxPoolGrad),
      toRounding(attrs.dimRoundingMode, tf.MaxPoolGrad),
    );
    const g = convGeometryOf(info);
    const gemm = wasmGemm();
    const xSize = input.shape.reduce((p, d) => p * d, 1);
    const dySize = dy.shape.reduce((p, d) => p * d, 1);
    const [offX = 0, offDy = 0, offDx = 0, offScratch = 0] = gemm.reserve([
      xSize,
      dySize,
      xSize,
      2 * g.inChannels,
    ]);
    gemm.view(offX, xSize).set(heapFloats(backend, input));
    gemm.view(offDy, dySize).set(heapFloats(backend, dy));
    gemm.maxPoolGrad(g, offX, offDy, offDx, offScratch);
    const out = backend.makeOutput([...input.shape], 'float32');
    heapFloats(backend, out).set(gemm.view(offDx, xSize));
    return out;
  };
}
