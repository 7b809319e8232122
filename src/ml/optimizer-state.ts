import * as tf from '@tensorflow/tfjs';

/** An optimizer slot as it leaves or enters the engine: name, shape and float32 values. */
export interface OptimizerSlot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** The fields of tfjs 4.22's `AdamOptimizer` that hold its bias corrections. */
interface AdamInternals {
  readonly beta1: number;
  readonly beta2: number;
  readonly iterations: number;
  readonly accBeta1: tf.Variable;
  readonly accBeta2: tf.Variable;
}

function isAdam(optimizer: tf.Optimizer): optimizer is tf.Optimizer & AdamInternals {
  const o = optimizer as Partial<AdamInternals>;
  return o.accBeta1 instanceof tf.Variable && o.accBeta2 instanceof tf.Variable;
}

/**
 * Sets an optimizer's state from slots its `getWeights()` gave (Adam: the step count, then the
 * first and second moments), so that training goes on exactly as if never interrupted.
 *
 * tfjs 4.22's `AdamOptimizer.setWeights` sets the bias corrections β₁ᵗ and β₂ᵗ (Kingma & Ba 2015,
 * Algorithm 1) to `pow(β, t + 1)`, while a running Adam builds them by one float32 multiplication
 * per step; the two differ in the last bits at most steps (at 352 steps, β₂ᵗ 0.70245641 against
 * 0.70245630), so a resumed run drifted from the uninterrupted one. Here they are rebuilt by the
 * same float32 multiplications (`Math.fround`, as the engine's float32 `Multiply` rounds).
 *
 * Tensors: those made for the call are disposed; the optimizer owns its new slots.
 * @throws {Error} from `setWeights` when the slots do not fit the optimizer.
 */
export async function setOptimizerSlots(
  optimizer: tf.Optimizer,
  slots: readonly OptimizerSlot[],
): Promise<void> {
  const named = slots.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, [...w.shape]) }));
  try {
    await optimizer.setWeights(named);
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
  if (!isAdam(optimizer)) return;
  const b1 = Math.fround(optimizer.beta1);
  const b2 = Math.fround(optimizer.beta2);
  let acc1 = b1;
  let acc2 = b2;
  for (let t = 0; t < optimizer.iterations; t++) {
    acc1 = Math.fround(acc1 * b1);
    acc2 = Math.fround(acc2 * b2);
  }
  tf.tidy(() => {
    optimizer.accBeta1.assign(tf.scalar(acc1));
    optimizer.accBeta2.assign(tf.scalar(acc2));
  });
}

/** An optimizer's state (`getWeights()`) copied out of the engine; the tensors made for the call (the step count) are disposed. */
export async function getOptimizerSlots(optimizer: tf.Optimizer): Promise<OptimizerSlot[]> {
  const out: OptimizerSlot[] = [];
  for (const { name, tensor } of await optimizer.getWeights()) {
    out.push({ name, shape: [...tensor.shape], values: Float32Array.from(await tensor.data()) });
    if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
  return out;
}
