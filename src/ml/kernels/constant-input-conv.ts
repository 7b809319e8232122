import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

type FusedConv2d = typeof tf.fused.conv2d;
type FusedConv2dArgs = Parameters<FusedConv2d>[0];

/**
 * tfjs-core's `fused` namespace object as tfjs-layers reads it: its `Conv2D` layer calls
 * `tfc.fused.conv2d` through tfjs-core's CommonJS exports at every call, so replacing the
 * property replaces the op for tfjs-layers too (as `fused-moments.ts` does for `moments`).
 */
const core = createRequire(import.meta.url)('@tensorflow/tfjs-core') as {
  fused: { conv2d: FusedConv2d };
};

/** The engine's recording state (tfjs-core 4.22 internals, read only). */
interface TapeState {
  readonly gradientDepth: number;
  readonly activeTape: readonly { readonly outputs: readonly tf.Tensor[] }[] | null;
}

/** The engine's `gradients(f, xs, dy?, allowNoGradients?)`, through which every tf.grad* runs. */
type Gradients = (f: () => tf.Tensor, xs: tf.Tensor[], ...rest: unknown[]) => unknown;

let original: FusedConv2d | undefined;
let originalGradients: Gradients | undefined;

/** The ids of the tensors differentiated by each gradient computation now running. */
const targets: Set<number>[] = [];

/**
 * Whether gradients are being recorded and `x` cannot carry one: neither a variable, nor a
 * tensor that a gradient computation now running differentiates (`targets`), nor the output
 * of any operation recorded on the tape, so nothing differentiated depends on it (a network's
 * input images).
 */
function constantUnderTape(x: tf.Tensor): boolean {
  const state = (tf.engine() as unknown as { state: TapeState }).state;
  if (
    state.gradientDepth === 0 ||
    state.activeTape === null ||
    x instanceof tf.Variable ||
    targets.length === 0 ||
    targets.some((ids) => ids.has(x.id))
  ) {
    return false;
  }
  return !state.activeTape.some((node) => node.outputs.some((t) => t.id === x.id));
}

/**
 * `tf.fused.conv2d` whose gradient skips the input gradient when the input cannot need one:
 * tfjs-core's fused convolution computes `dx` and `dW` together whatever the tape needs, so a
 * network's first layer paid for a `Conv2DBackpropInput` of the images that nobody reads
 * (ResNet-20's: a 3×3 transposed conv from 16 channels back to 3 over the full batch). When
 * gradients are being recorded, `x` is a constant (see `constantUnderTape`), the activation
 * is linear (the only one tfjs-core fuses while recording) and the layout NHWC with dilation 1,
 * the op is one of the filter (and bias) alone: the same forward kernel, `dW` from
 * `Conv2DBackpropFilter` and the bias gradient as the per-channel sum of `dy`, as tfjs-core's
 * fused gradient forms them. Anything else runs `base`.
 */
function constantInputConv2d(base: FusedConv2d): FusedConv2d {
  const conv = (args: FusedConv2dArgs): tf.Tensor3D | tf.Tensor4D => {
    const { x, filter, activation, preluActivationWeights, dimRoundingMode } = args;
    // tfjs-layers passes a null bias for `useBias: false`.
    const bias = args.bias ?? undefined;
    const dilations = args.dilations ?? 1;
    if (
      !(x instanceof tf.Tensor) ||
      !(filter instanceof tf.Tensor) ||
      (bias !== undefined && !(bias instanceof tf.Tensor)) ||
      x.rank !== 4 ||
      filter.rank !== 4 ||
      (activation ?? 'linear') !== 'linear' ||
      (preluActivationWeights ?? undefined) !== undefined ||
      (args.dataFormat ?? 'NHWC') !== 'NHWC' ||
      !(dilations === 1 || (Array.isArray(dilations) && dilations.every((d) => d === 1))) ||
      !constantUnderTape(x)
    ) {
      return base(args);
    }
    const { strides, pad } = args;
    const op = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = inputs.at(-1) as tf.GradSaveFunc;
      const w = inputs[0] as tf.Tensor4D;
      const b = bias === undefined ? undefined : (inputs[1] as tf.Tensor);
      // The caller's bias (a tensor, or null/absent) replaced by the op's own input.
      const value = base({ ...args, filter: w, ...(b !== undefined && { bias: b }) });
      // x as well: it must outlive the forward pass until the gradient runs.
      save([x, w]);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const dw = tf.engine().runKernel<tf.Tensor>(
            tf.Conv2DBackpropFilter,
            { x: saved[0]!, dy },
            {
              strides,
              pad,
              dataFormat: 'NHWC',
              ...(dimRoundingMode !== undefined && { dimRoundingMode }),
              filterShape: saved[1]!.shape,
            },
          );
          return b === undefined ? [dw] : [dw, tf.reshape(tf.sum(dy, [0, 1, 2]), b.shape)];
        },
      };
    });
    return bias === undefined ? op(filter) : op(filter, bias);
  };
  return conv as FusedConv2d;
}

/**
 * Makes `tf.fused.conv2d` (as tfjs-layers calls it) skip the input gradient of a constant input
 * (see `constantInputConv2d`); idempotent.
 */
export function registerConstantInputConv(): void {
  if (original !== undefined) return;
  original = core.fused.conv2d;
  core.fused.conv2d = constantInputConv2d(original);
  // Every tf.grad, tf.grads, tf.valueAndGrads and tf.variableGrads (optimizers, tfjs-layers)
  // calls the engine singleton's gradients(f, xs): note its xs while it runs.
  const engine = tf.engine() as unknown as { gradients: Gradients };
  const inner = engine.gradients;
  originalGradients = inner;
  engine.gradients = function (this: unknown, f, xs, ...rest) {
    targets.push(new Set(xs.map((t) => t.id)));
    try {
      return inner.call(this, f, xs, ...rest);
    } finally {
      targets.pop();
    }
  };
}

/** Puts tfjs-core's fused conv back (tests and benchmarks). */
export function unregisterConstantInputConv(): void {
  if (original !== undefined) {
    core.fused.conv2d = original;
    original = undefined;
  }
  if (originalGradients !== undefined) {
    (tf.engine() as unknown as { gradients: Gradients }).gradients = originalGradients;
    originalGradients = undefined;
  }
}

/** The wrapped op, for tests that call it directly (the ES import of `tf.fused` is a snapshot). */
export function fusedConv2d(args: FusedConv2dArgs): tf.Tensor4D {
  return core.fused.conv2d(args) as tf.Tensor4D;
}
