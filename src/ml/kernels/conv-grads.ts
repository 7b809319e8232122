import * as tf from '@tensorflow/tfjs';
// Imported for its side effect: the wasm kernels must be registered before ours replace one.
import '@tensorflow/tfjs-backend-wasm';
import { conv2dBackpropFilterKernel } from './conv2d-backprop-filter.ts';
import { conv2dBackpropInputKernel } from './conv2d-backprop-input.ts';
import { depthwiseConv2dBackpropFilterKernel } from './depthwise-conv2d-backprop-filter.ts';
import { depthwiseConv2dBackpropInputKernel } from './depthwise-conv2d-backprop-input.ts';
import { createBatchMatMulKernel } from './batch-mat-mul.ts';
import { createMaxPoolGradKernel } from './max-pool-grad.ts';
import { registerFastKernels, unregisterFastKernels } from './fast-kernels.ts';
import { registerReduceGradients, unregisterReduceGradients } from './reduce-gradients.ts';
import { registerBatchNormGradient, unregisterBatchNormGradient } from './batch-norm-grad.ts';
import {
  registerClipGradient,
  registerReluGradient,
  unregisterClipGradient,
  unregisterReluGradient,
} from './clip-grad.ts';
import { registerFusedMoments, unregisterFusedMoments } from './fused-moments.ts';
import {
  registerFusedMovingAverages,
  unregisterFusedMovingAverages,
} from './batch-norm-moving-average.ts';
import { registerFusedRelu6, unregisterFusedRelu6 } from './fused-relu-clip.ts';
import { registerConstantInputConv, unregisterConstantInputConv } from './constant-input-conv.ts';

export { conv2dBackpropFilter } from './conv2d-backprop-filter.ts';
export { conv2dBackpropInput } from './conv2d-backprop-input.ts';
export { depthwiseConv2dBackpropFilter } from './depthwise-conv2d-backprop-filter.ts';
export { depthwiseConv2dBackpropInput } from './depthwise-conv2d-backprop-input.ts';
export { maxPoolGrad } from './max-pool-grad.ts';

/** One kernel of this module and how it is installed on a backend. */
export interface KernelPlan {
  readonly kernelName: string;
  readonly backendName: string;
  /**
   * 'fill': only where the backend has no such kernel (tfjs-backend-wasm 4.x lacks it; a later
   * release's own kernel is kept). 'replace': over the backend's own, measured slower.
   * 'wrap': around the backend's own, which handles the cases the wrapper passes on to it.
   */
  readonly mode: 'fill' | 'replace' | 'wrap';
  /** Builds the kernel; `original` is the backend's own ('wrap' and 'replace' only). */
  readonly build: (original?: tf.KernelConfig) => tf.KernelFunc;
}

/**
 * Where the kernels go, from timings against each backend's own on one core (tfjs 4.22,
 * LeNet-sized and 32×32×16 shapes; see the TSDoc of each kernel):
 * - wasm lacks the three filter/depthwise gradients (training a conv net throws
 *   "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'"); its `Conv2DBackpropInput`
 *   is a scalar loop 3–10× slower than the XNNPACK-backed composite; its `MaxPoolGrad` drops
 *   the gradient of windows whose maximum is ≤ 0; its transposed `BatchMatMul` is 5–8× slower
 *   than transposing first;
 * - cpu's `Conv2DBackpropFilter` reads every element through `TensorBuffer.get` and is 20–45×
 *   slower than the composite (seconds per LeNet batch), its depthwise filter gradient 5–8×;
 *   its input gradients are faster than the composites and are kept.
 */
export const KERNEL_PLAN: readonly KernelPlan[] = [
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    mode: 'fill',
    build: () => conv2dBackpropFilterKernel,
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: 'wasm',
    mode: 'fill',
    build: () => depthwiseConv2dBackpropFilterKernel,
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName: 'wasm',
    mode: 'fill',
    build: () => depthwiseConv2dBackpropInputKernel,
  },
  {
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    mode: 'replace',
    build: () => conv2dBackpropInputKernel,
  },
  { kernelName: tf.MaxPoolGrad, backendName: 'wasm', mode: 'wrap', build: createMaxPoolGradKernel },
  {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    mode: 'wrap',
    build: (original) => createBatchMatMulKernel(original!),
  },
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'cpu',
    mode: 'replace',
    build: () => conv2dBackpropFilterKernel,
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: 'cpu',
    mode: 'replace',
    build: () => depthwiseConv2dBackpropFilterKernel,
  },
];

/** Kernels this module displaced, to put back on unregister; `undefined` where none existed. */
const displaced = new Map<string, tf.KernelConfig | undefined>();

/**
 * Installs the training kernels composed from fast forward ops ({@link KERNEL_PLAN}): on wasm
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter` and
 * `DepthwiseConv2dNativeBackpropInput` (missing there), a faster `Conv2DBackpropInput`, a correct
 * and faster `MaxPoolGrad` and a faster transposed `BatchMatMul`; on cpu faster
 * `Conv2DBackpropFilter` and `DepthwiseConv2dNativeBackpropFilter`. Afterwards `model.fit` and
 * `tf.grads` work on wasm for Conv2D, DepthwiseConv2D and SeparableConv2D layers. Last, the
 * WebAssembly SIMD GEMM kernels of `fast-kernels.ts` wrap wasm's matrix products and conv
 * gradients, and `Sum`/`Mean` get gradients without a `tf.ones` of the input's size
 * (`reduce-gradients.ts`, all backends).
 *
 * Idempotent; needs no initialized backend; other backends (tfjs-node, webgl) are untouched.
 *
 * @example
 * registerConvGradientKernels();
 * await tf.setBackend('wasm');
 * await model.fit(xs, ys); // conv layers now train on wasm
 */
export function registerConvGradientKernels(): void {
  for (const plan of KERNEL_PLAN) {
    const key = `${plan.backendName}/${plan.kernelName}`;
    if (displaced.has(key)) {
      continue;
    }
    const existing = findKernel(plan.kernelName, plan.backendName);
    if (plan.mode === 'fill' ? existing !== undefined : existing === undefined) {
      continue; // 'fill': the backend has its own; 'wrap'/'replace': nothing to wrap or replace
    }
    if (existing !== undefined) {
      tf.unregisterKernel(plan.kernelName, plan.backendName);
    }
    tf.registerKernel({
      kernelName: plan.kernelName,
      backendName: plan.backendName,
      kernelFunc: plan.build(existing),
      // A wrapped kernel still needs its set-up (binding the wasm function), which the engine
      // runs for registered kernels whenever the backend is selected.
      ...(existing?.setupFunc !== undefined && { setupFunc: existing.setupFunc }),
      ...(existing?.disposeFunc !== undefined && { disposeFunc: existing.disposeFunc }),
    });
    displaced.set(key, existing);
  }
  // The GEMM-backed wasm kernels (fast-kernels.ts) wrap the ones above, so they go on last.
  registerFastKernels();
  registerReduceGradients();
  registerBatchNormGradient();
  registerClipGradient();
  registerReluGradient();
  registerFusedMoments();
  registerFusedMovingAverages();
  registerFusedRelu6();
  registerConstantInputConv();
}

/**
 * Undoes {@link registerConvGradientKernels}: removes the composite kernels and restores the
 * backends' own. Meant for tests and benchmarks that compare against the originals.
 */
export function unregisterConvGradientKernels(): void {
  unregisterConstantInputConv();
  unregisterClipGradient();
  unregisterReluGradient();
  unregisterFusedRelu6();
  unregisterFusedMovingAverages();
  unregisterFusedMoments();
  unregisterBatchNormGradient();
  unregisterReduceGradients();
  unregisterFastKernels();
  for (const [key, original] of displaced) {
    const [backendName = '', kernelName = ''] = key.split('/');
    tf.unregisterKernel(kernelName, backendName);
    if (original !== undefined) {
      tf.registerKernel(original);
      // The engine runs kernel set-up (e.g. binding the wasm function) when a backend starts;
      // one already running missed it while our kernel stood in.
      const running = tf.engine().registry[backendName];
      if (running !== undefined) {
        original.setupFunc?.(running);
      }
    }
  }
  displaced.clear();
}

function findKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  // getKernel's declared type omits undefined, but it returns undefined for unknown pairs.
  return tf.getKernel(kernelName, backendName);
}
