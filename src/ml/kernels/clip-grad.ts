import * as tf from '@tensorflow/tfjs';
import { size } from './conv-geometry.ts';
import { heapKernels } from './heap-kernels.ts';
import { heapOffset, isWasmBackend } from './wasm-heap.ts';

/**
 * A wasm kernel of inputs `{dy, x}` (float32, the same shape) and one float32 output shaped like
 * `x`, computed by `run` from the heap offsets of `x`, `dy` and the output and the element count
 * (the elementwise gradients here and in `fused-relu-clip.ts`).
 *
 * @throws {Error} (from the kernel) on another backend or when its memory is not reachable
 */
export function elementwiseGradKernel(
  name: string,
  run: (
    kernels: NonNullable<ReturnType<typeof heapKernels>>,
    at: { x: number; dy: number; out: number; n: number },
    attrs: tf.NamedAttrMap,
  ) => void,
): tf.KernelFunc {
  return (args) => {
    const { dy, x } = args.inputs;
    const backend = args.backend;
    if (dy === undefined || x === undefined) {
      throw new TypeError(`${name}: dy and x are required`);
    }
    if (!isWasmBackend(backend)) {
      throw new Error(`${name}: not a wasm backend`);
    }
    const kernels = heapKernels(backend);
    if (kernels === undefined) {
      throw new Error(`${name}: the wasm backend's memory is not reachable`);
    }
    const out = backend.makeOutput([...x.shape], 'float32');
    const at = {
      x: heapOffset(backend, x),
      dy: heapOffset(backend, dy),
      out: heapOffset(backend, out),
      n: size(x.shape),
    };
    run(kernels, at, args.attrs ?? {});
    return out;
  };
}

/** The wasm kernel computing `clipByValue`'s gradient in one pass. */
export const CLIP_GRAD = 'CnnClassroomClipGrad';

/**
 * `CnnClassroomClipGrad` on wasm: inputs `{dy, x}` (float32, the same shape), attrs
 * `clipValueMin`, `clipValueMax`; output float32 `dx = min ≤ x ≤ max ? dy : 0`, bit for bit
 * tfjs-core 4.22's gradient of `ClipByValue`, in one pass of `heap-kernels.c`'s `clip_grad`.
 */
const clipGradWasm = elementwiseGradKernel(CLIP_GRAD, (kernels, at, attrs) =>
  kernels.clipGrad(
    at.x,
    at.dy,
    at.n,
    Number(attrs['clipValueMin']),
    Number(attrs['clipValueMax']),
    at.out,
  ),
);

/** The wasm kernel computing `Relu`'s gradient in one pass. */
export const RELU_GRAD = 'CnnClassroomReluGrad';

/**
 * `CnnClassroomReluGrad` on wasm: inputs `{dy, x}` (float32, the same shape); output float32
 * `dx = dy·step(x)`, bit for bit tfjs-core 4.22's gradient of `Relu` (`mul(dy, step(x))`, two
 * full-size kernels), in one pass of `heap-kernels.c`'s `relu_grad`.
 */
const reluGradWasm = elementwiseGradKernel(RELU_GRAD, (kernels, at) =>
  kernels.reluGrad(at.x, at.dy, at.n, at.out),
);

/** Whether the one-pass wasm kernel may take this gradient (else tfjs-core's runs). */
function takesOnePass(dy: tf.Tensor | tf.Tensor[], x: tf.Tensor | undefined): x is tf.Tensor {
  const backend = tf.backend();
  return (
    !Array.isArray(dy) &&
    x !== undefined &&
    !tf.engine().isTapeOn() &&
    dy.dtype === 'float32' &&
    x.dtype === 'float32' &&
    tf.util.arraysEqual(dy.shape, x.shape) &&
    isWasmBackend(backend) &&
    heapKernels(backend) !== undefined
  );
}

let original: tf.GradConfig | undefined;
let originalRelu: tf.GradConfig | undefined;

/**
 * `Relu`'s gradient in one pass on wasm (`CnnClassroomReluGrad`; tfjs-core runs `Step` and
 * `Multiply`): ResNet-20 has 19 ReLU layers, MobileNet-fashion 11 (its ReLU6 is
 * `clipByValue(relu(x), 0, 6)`). Elsewhere, as for `ClipByValue` below, tfjs-core's gradient
 * runs. Installs the kernel and the gradient; idempotent.
 */
export function registerReluGradient(): void {
  if (originalRelu !== undefined) {
    return;
  }
  const core = tf.getGradient(tf.Relu);
  if (core === undefined) {
    return;
  }
  originalRelu = core;
  if (tf.getKernel(RELU_GRAD, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: reluGradWasm });
  }
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: core.inputsToSave ?? ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (!takesOnePass(dy, x)) {
        return core.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel<tf.Tensor>(RELU_GRAD, { dy: dy as tf.Tensor, x }) };
    },
  });
}

/** Puts back tfjs-core's `Relu` gradient (tests and benchmarks); the kernel stays registered. */
export function unregisterReluGradient(): void {
  if (originalRelu !== undefined) {
    tf.registerGradient(originalRelu);
    originalRelu = undefined;
  }
}

/**
 * `ClipByValue`'s gradient (ReLU6 is `clipByValue(x, 0, 6)`) in one pass on wasm: tfjs-core's runs
 * five full-size kernels (`GreaterEqual`, `LessEqual`, `LogicalAnd`, `ZerosLike`, `Select`),
 * about 800 ms of a 2.7 s MobileNet-fashion step at batch 128 for its twelve ReLU6 layers.
 * Elsewhere (other backends, dtypes, or shapes that differ, and under a recording tape: second-order
 * gradients) tfjs-core's gradient runs. Installs the kernel and the gradient; idempotent.
 */
export function registerClipGradient(): void {
  if (original !== undefined) {
    return;
  }
  const core = tf.getGradient(tf.ClipByValue);
  if (core === undefined) {
    return;
  }
  original = core;
  if (tf.getKernel(CLIP_GRAD, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: CLIP_GRAD, backendName: 'wasm', kernelFunc: clipGradWasm });
  }
  tf.registerGradient({
    kernelName: tf.ClipByValue,
    inputsToSave: core.inputsToSave ?? ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (!takesOnePass(dy, x)) {
        return core.gradFunc(dy, saved, attrs);
      }
      return {
        x: () =>
          tf.engine().runKernel<tf.Tensor>(
            CLIP_GRAD,
            { dy: dy as tf.Tensor, x },
            {
              clipValueMin: attrs.clipValueMin as number,
              clipValueMax: attrs.clipValueMax as number,
            },
          ),
      };
    },
  });
}

/** Puts back tfjs-core's gradient (tests and benchmarks); the kernel stays registered. */
export function unregisterClipGradient(): void {
  if (original !== undefined) {
    tf.registerGradient(original);
    original = undefined;
  }
}
