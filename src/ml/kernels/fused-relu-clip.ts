import * as tf from '@tensorflow/tfjs';
import { elementwiseGradKernel } from './clip-grad.ts';
import { heapKernels } from './heap-kernels.ts';
import { isWasmBackend } from './wasm-heap.ts';

/** The wasm kernel computing the gradient of `clipByValue(relu(x), 0, hi)` in one pass. */
export const RELU_CLIP_GRAD = 'CnnClassroomReluClipGrad';

/**
 * `CnnClassroomReluClipGrad` on wasm: inputs `{dy, x}` (float32, the same shape), attr `hi`;
 * output float32 `dx = x > hi ? 0 : dy·step(x)`, bit for bit tfjs-core 4.22's gradient of
 * `clipByValue(relu(x), 0, hi)` (`ClipByValue`'s gradient, then `Relu`'s), in one pass of
 * `heap-kernels.c`'s `relu_clip_grad`.
 */
const reluClipGradWasm = elementwiseGradKernel(RELU_CLIP_GRAD, (kernels, at, attrs) =>
  kernels.reluClipGrad(at.x, at.dy, at.n, Number(attrs['hi']), at.out),
);

/** The parts of tfjs-layers' `ReLU` layer its `call` reads. */
interface ReluLayerLike {
  maxValue?: number | null;
  call: (
    this: ReluLayerLike,
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ) => tf.Tensor | tf.Tensor[];
}

let patched: { proto: ReluLayerLike; call: ReluLayerLike['call'] } | undefined;

/**
 * ReLU6 (`clipByValue(relu(x), 0, 6)`, tfjs-layers' `ReLU` layer with `maxValue` 6, as
 * MobileNet uses it: Howard et al., "MobileNets", 2017; Sandler et al., "MobileNetV2", CVPR
 * 2018) as one forward kernel (`Relu6`, the same values as `Relu` then `ClipByValue`) and one
 * gradient pass ({@link RELU_CLIP_GRAD}) instead of two each way.
 *
 * @param x float32, any shape
 * @returns float32 shaped like `x`
 */
export function fusedRelu6(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    save([input]);
    return {
      value: tf.relu6(input),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel<tf.Tensor>(RELU_CLIP_GRAD, { dy, x: saved[0]! }, { hi: 6 }),
    };
  });
  return f(x);
}

/** Whether {@link fusedRelu6} may run here: float32 on a wasm backend whose heap is reachable. */
function fusedHere(x: tf.Tensor): boolean {
  const backend = tf.backend();
  return (
    x.dtype === 'float32' &&
    isWasmBackend(backend) &&
    heapKernels(backend) !== undefined &&
    tf.getKernel(RELU_CLIP_GRAD, 'wasm') !== undefined
  );
}

function fusedCall(
  this: ReluLayerLike,
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
): tf.Tensor | tf.Tensor[] {
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  if (this.maxValue !== 6 || input === undefined || !fusedHere(input)) {
    return patched!.call.call(this, inputs, kwargs);
  }
  return fusedRelu6(input);
}

/**
 * Registers {@link RELU_CLIP_GRAD} on wasm and makes tfjs-layers' `ReLU` layers with
 * `maxValue` 6 run {@link fusedRelu6} there (other layers and backends keep tfjs-layers' own
 * `call`); idempotent.
 */
export function registerFusedRelu6(): void {
  if (tf.getKernel(RELU_CLIP_GRAD, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: RELU_CLIP_GRAD,
      backendName: 'wasm',
      kernelFunc: reluClipGradWasm,
    });
  }
  if (patched !== undefined) {
    return;
  }
  const proto = Object.getPrototypeOf(tf.layers.reLU({ maxValue: 6 })) as ReluLayerLike;
  patched = { proto, call: proto.call };
  proto.call = fusedCall;
}

/** Puts tfjs-layers' own `ReLU` `call` back (tests and benchmarks); the kernel stays registered. */
export function unregisterFusedRelu6(): void {
  if (patched !== undefined) {
    patched.proto.call = patched.call;
    patched = undefined;
  }
}
