import * as tf from '@tensorflow/tfjs';

/**
 * `dy` of a reduction over `axis` of `x` (the reduced axes kept as 1 or dropped), broadcast back
 * to `x.shape` as float32 and, for a mean, divided by the number of values reduced: `dy` reshaped
 * to `x.shape` with 1 on the reduced axes, then tiled.
 */
function broadcastBack(dy: tf.Tensor, x: tf.Tensor, axis: unknown, mean: boolean): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const reps = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
  const reshaped = tf.reshape(
    tf.cast(dy, 'float32'),
    x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
  const scaled = mean
    ? tf.div(
        reshaped,
        reps.reduce((n, r) => n * r, 1),
      )
    : reshaped;
  // tf.tile rather than tf.broadcastTo, which leaves an axis of size 0 at 1.
  return tf.tile(scaled, reps);
}

/**
 * Gradients of `Sum` and `Mean` that broadcast `dy` by `Tile` instead of multiplying it by a
 * `tf.ones(x.shape)`, as tfjs-core 4.22's do. Those fill a Float32Array of x's size in JavaScript
 * and copy it into the backend on every call: for the batch-norm statistics of a ResNet-20
 * training step (42 `Mean`s over `[128, 32, 32, 16]`-sized activations) about 280 ms of a 2.1 s
 * step on wasm, before the multiply itself. Same values bit for bit: `dy·1 = dy` and `(dy·1)/n =
 * dy/n` in float32.
 *
 * Input `dy` has x's shape with the reduced axes removed or kept as 1; the gradient has x's shape,
 * float32.
 */
const REDUCE_GRADIENTS: readonly tf.GradConfig[] = [tf.Sum, tf.Mean].map((kernelName) => ({
  kernelName,
  inputsToSave: ['x'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [x] = saved as [tf.Tensor];
    return { x: () => broadcastBack(dy as tf.Tensor, x, attrs.axis, kernelName === tf.Mean) };
  },
}));

const displaced = new Map<string, tf.GradConfig | undefined>();

/**
 * Installs {@link REDUCE_GRADIENTS} over tfjs-core's gradients for `Sum` and `Mean`, on every
 * backend (the gradient registry is global). Idempotent; undone by
 * {@link unregisterReduceGradients}.
 */
export function registerReduceGradients(): void {
  for (const config of REDUCE_GRADIENTS) {
    if (displaced.has(config.kernelName)) {
      continue;
    }
    displaced.set(config.kernelName, tf.getGradient(config.kernelName));
    tf.registerGradient(config);
  }
}

/** Puts back the gradients {@link registerReduceGradients} replaced (tests and benchmarks). */
export function unregisterReduceGradients(): void {
  for (const original of displaced.values()) {
    if (original !== undefined) {
      tf.registerGradient(original);
    }
  }
  displaced.clear();
}
