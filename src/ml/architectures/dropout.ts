import * as tf from '@tensorflow/tfjs';

/** Settings of {@link StepSeededDropout}. */
export interface StepSeededDropoutArgs {
  readonly name: string;
  /** Share of units zeroed while training, in [0, 1). */
  readonly rate: number;
  /**
   * Base seed; the mask of training step `s` is drawn from `(seed, s)`. Absent (a Keras
   * `Dropout` saved without one): derived from the layer's name, so runs still repeat.
   */
  readonly seed?: number | null;
  /** Keras' `noise_shape`: the mask's shape, broadcast over the input (e.g. `[batch, 1, 1, C]`). */
  readonly noiseShape?: number[] | null;
}

/** A 31-bit FNV-1a hash of a string: a seed for layers saved without one. */
function nameSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 1;
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
 * Serialises as a plain Keras `Dropout` (class name and `rate`/`seed`/`noiseShape` config), so
 * saved models load anywhere; at inference it is the identity, as Keras' is. Engine workers
 * deserialise every Keras `Dropout` as this class (a seedless one seeded from its name).
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
  readonly noiseShape: number[] | undefined;
  /** Whether `seed` was given (saved in the config only then, as Keras does). */
  private readonly seeded: boolean;
  /** Training calls made so far (the step of the next mask). */
  step = 0;

  constructor(args: StepSeededDropoutArgs) {
    super({ name: args.name });
    if (!(args.rate >= 0 && args.rate < 1)) {
      throw new RangeError(`dropout rate must be in [0, 1), got ${args.rate}`);
    }
    this.rate = args.rate;
    this.seeded = args.seed != null;
    this.seed = args.seed ?? nameSeed(args.name);
    this.noiseShape = args.noiseShape ?? undefined;
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (x === undefined) throw new Error(`${this.name}: no input`);
    if (kwargs['training'] !== true || this.rate === 0) return x;
    // One distinct, reproducible stream per step (seedrandom takes any string as its seed).
    const seed = `${this.seed}:${this.step}`;
    this.step += 1;
    return tf.tidy(() => tf.dropout(x, this.rate, this.noiseShape, seed));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      rate: this.rate,
      ...(this.noiseShape ? { noiseShape: this.noiseShape } : {}),
      ...(this.seeded ? { seed: this.seed } : {}),
    };
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
