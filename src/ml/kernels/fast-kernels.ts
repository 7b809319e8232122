import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  createFastConv2DBackpropFilterKernel,
  createFastConv2DBackpropInputKernel,
} from './fast-conv-grads.ts';
import { createFastBatchMatMulKernel, createFastFusedMatMulKernel } from './fast-matmul.ts';
import { createSharedCastKernel, createSharedIdentityKernel } from './fast-identity.ts';
import { createFastMaxPoolGradKernel } from './fast-max-pool-grad.ts';
import {
  createFastBroadcastKernel,
  createFastFusedBatchNormKernel,
  createFastMeanKernel,
  createFastSumKernel,
} from './fast-channel-ops.ts';
import { createFastTileKernel } from './fast-tile.ts';
import { createFastConv2DKernel } from './fast-conv.ts';
import { createFastReverseKernel } from './fast-reverse.ts';
import {
  createFastDepthwiseBackpropFilterKernel,
  createFastDepthwiseBackpropInputKernel,
  createFastDepthwiseConv2DKernel,
} from './fast-depthwise.ts';

/** A kernel that wraps the one registered before it, which takes the cases it passes on. */
interface FastKernel {
  readonly kernelName: string;
  readonly build: (original: tf.KernelConfig) => tf.KernelFunc;
}

/**
 * The wasm-backend kernels backed by this project's WebAssembly SIMD code (the GEMM of
 * `wasm/gemm.c`; the in-place kernels of `wasm/heap-kernels.c` and `wasm/winograd.c`), each
 * wrapping whatever kernel was registered before (tfjs-backend-wasm's own, or this project's
 * composites from `conv-grads.ts`) and passing it the shapes it does not take. Measured per shape
 * class in docs/engine-speed.md: 3×3 stride-1 convolutions by Winograd's F(4×4, 3×3), other
 * forward convolutions stay with XNNPACK; depthwise convolutions and both their gradients in
 * place (`wasm/depthwise.c`).
 */
export const FAST_KERNELS: readonly FastKernel[] = [
  { kernelName: tf.BatchMatMul, build: createFastBatchMatMulKernel },
  { kernelName: tf._FusedMatMul, build: createFastFusedMatMulKernel },
  { kernelName: tf.Conv2DBackpropFilter, build: createFastConv2DBackpropFilterKernel },
  { kernelName: tf.Conv2DBackpropInput, build: createFastConv2DBackpropInputKernel },
  { kernelName: tf.Tile, build: createFastTileKernel },
  { kernelName: tf.Reverse, build: createFastReverseKernel },
  { kernelName: tf.MaxPoolGrad, build: createFastMaxPoolGradKernel },
  { kernelName: tf.Identity, build: createSharedIdentityKernel },
  { kernelName: tf.Cast, build: createSharedCastKernel },
  { kernelName: tf.Sum, build: createFastSumKernel },
  { kernelName: tf.Mean, build: createFastMeanKernel },
  { kernelName: tf.Add, build: createFastBroadcastKernel('add') },
  { kernelName: tf.Sub, build: createFastBroadcastKernel('sub') },
  { kernelName: tf.Multiply, build: createFastBroadcastKernel('mul') },
  { kernelName: tf.RealDiv, build: createFastBroadcastKernel('div') },
  { kernelName: tf.FusedBatchNorm, build: createFastFusedBatchNormKernel },
  { kernelName: tf.Conv2D, build: createFastConv2DKernel },
  { kernelName: tf.FusedConv2D, build: createFastConv2DKernel },
  { kernelName: tf.DepthwiseConv2dNative, build: createFastDepthwiseConv2DKernel },
  { kernelName: tf.FusedDepthwiseConv2D, build: createFastDepthwiseConv2DKernel },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    build: createFastDepthwiseBackpropInputKernel,
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    build: createFastDepthwiseBackpropFilterKernel,
  },
];

const BACKEND = 'wasm';
const wrapped = new Map<string, tf.KernelConfig>();

/**
 * Installs {@link FAST_KERNELS} over the wasm backend's current kernels. Call after
 * `registerConvGradientKernels` has filled the gradients wasm lacks. Idempotent.
 */
export function registerFastKernels(): void {
  for (const { kernelName, build } of FAST_KERNELS) {
    if (wrapped.has(kernelName)) {
      continue;
    }
    const existing = tf.getKernel(kernelName, BACKEND) as tf.KernelConfig | undefined;
    if (existing === undefined) {
      continue;
    }
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({
      kernelName,
      backendName: BACKEND,
      kernelFunc: build(existing),
      ...(existing.setupFunc !== undefined && { setupFunc: existing.setupFunc }),
      ...(existing.disposeFunc !== undefined && { disposeFunc: existing.disposeFunc }),
    });
    wrapped.set(kernelName, existing);
  }
}

/** Puts back the kernels {@link registerFastKernels} wrapped (tests and benchmarks). */
export function unregisterFastKernels(): void {
  for (const [kernelName, original] of wrapped) {
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel(original);
  }
  wrapped.clear();
}
