import * as tf from '@tensorflow/tfjs';

/** Settings of {@link StepSeededDropout}. */
export interface StepSeededDropoutArgs {
  readonly name: string;
  /** Share of units zeroed while training, in (0, 1). */
  readonly rate: number;
  /** Base seed; the mask of training step `s` is drawn from `(seed, s)`. */
  readonly seed: number;
}

/**
 * Dropout (Srivastava et al., JMLR 2014, "Dropout: a simple way to prevent neural networks from
 * overfitting") whose mask is fresh at every training step yet reproducible: step `s` draws it
 * from the seed `(seed, s)`.
 *
 * Why not `tf.layers.dropout({ seed })`: tfjs 4.22 passes that seed to `randomUniform` on every
 * call, so a seeded Dropout zeroes the same units at every step (one fixed mask per batch row),
 * which is much weaker regularisation; without a seed it draws from `Math.random`, and a run
 * cannot be repeated. Here the layer counts its training calls, and `trainClassifier` sets the
 * count at the start of each epoch ({@link setDropoutStep}), so a resumed run draws the same masks
 * as one never interrupted.
 *
 * Serialises as a plain Keras `Dropout` (class name and `rate`/`seed` config), so saved models
 * load anywhere; at inference it is the identity, as Keras' is.
 *
 * Input and output: any float32 tensor, same shape. Inverted dropout: kept units are scaled by
 * `1 / (1 - rate)`.
 * @throws {RangeError} when `rate` is not in [0, 1).
 */
export class StepSeededDropout extends tf.layers.Layer {
  /** Saved as Keras' own Dropout: nothing extra is needed to load the model. */
  static className = 'Dropout';
  readonly rate: number;
  readonly seed: number;
  /** Training calls made so far (the step of the next mask). */
  step = 0;

  constructor(args: StepSeededDropoutArgs) {
    super({ name: args.name });
    if (!(args.rate >= 0 && args.rate < 1)) {
      throw new RangeError(`dropout rate must be in [0, 1), got ${args.rate}`);
    }
    this.rate = args.rate;
    this.seed = args.seed;
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (x === undefined) throw new Error(`${this.name}: no input`);
    if (kwargs['training'] !== true || this.rate === 0) return x;
    // seedrandom takes the seed as a string; one distinct, reproducible stream per step.
    const seed = this.seed * 1_000_003 + this.step;
    this.step += 1;
    return tf.dropout(x, this.rate, undefined, seed);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

/**
 * Sets the step counter of every {@link StepSeededDropout} in `model` (the number of training
 * batches already run), so the next masks are those an uninterrupted run would draw.
 */
export function setDropoutStep(model: tf.LayersModel, step: number): void {
  for (const layer of model.layers) {
    if (layer instanceof StepSeededDropout) layer.step = step;
  }
}
