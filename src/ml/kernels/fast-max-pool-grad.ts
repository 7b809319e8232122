import * as tf from '@tensorflow/tfjs';
import { assertShape, toPad, toPair, toRounding } from './composite-kernel.ts';
import { heapKernels } from './heap-kernels.ts';
import { convGeometryOf } from './wasm-gemm.ts';
import { float32OnWasm, heapOffset } from './wasm-heap.ts';

/**
 * `MaxPoolGrad` on the wasm backend in C (`wasm/heap-kernels.c`, `max_pool_grad`, in place on
 * the backend's heap, 4 channels per SIMD lane group): one pass over the windows, recomputing
 * each maximum, with TensorFlow's semantics (first maximum in row-major
 * order, padding never wins, overlapping windows add). Replaces the tap-by-tap composite of
 * `max-pool-grad.ts` for overlapping windows (AlexNet's 3x3/2 pools: 1.6 s of a 5.6 s training
 * step in that composite's slices and masks) and the tiled one alike. Inputs `{dy, input,
 * output}` (output unused), attrs as in tfjs-core.
 */
export function createFastMaxPoolGradKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['dy', 'input']);
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const {
      backend,
      inputs: { dy, input },
    } = fast;
    const attrs = args.attrs ?? {};
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      toPair(attrs.filterSize, 'filterSize', tf.MaxPoolGrad),
      toPair(attrs.strides, 'strides', tf.MaxPoolGrad),
      1,
      toPad(attrs.pad, tf.MaxPoolGrad),
      toRounding(attrs.dimRoundingMode, tf.MaxPoolGrad),
    );
    // The kernel reads dy by the pooling geometry: a mismatched dy would be read past its end.
    assertShape(
      dy.shape,
      [info.batchSize, info.outHeight, info.outWidth, info.inChannels],
      'dy',
      tf.MaxPoolGrad,
    );
    const kernels = heapKernels(backend);
    if (kernels === undefined) {
      return original.kernelFunc(args);
    }
    const out = backend.makeOutput([...input.shape], 'float32');
    kernels.maxPoolGrad(
      convGeometryOf(info),
      heapOffset(backend, input),
      heapOffset(backend, dy),
      heapOffset(backend, out),
    );
    return out;
  };
}
