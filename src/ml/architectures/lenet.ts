import * as tf from '@tensorflow/tfjs';

/** Options of {@link buildLeNet}. */
export interface LeNetOptions {
  /** Input `[height, width, channels]`; MNIST is `[28, 28, 1]`. */
  readonly inputShape?: readonly [number, number, number];
  /** Number of classes of the softmax output. */
  readonly numClasses?: number;
  /** Seed of the weight initializers, for reproducible training. */
  readonly seed?: number;
}

/**
 * Builds the course's LeNet-like network with the functional API (`tf.input`), exactly the
 * layers of the lab's worked example (LeCun et al. 1998, with ReLU and max pooling):
 * Conv 6@5x5 relu > MaxPool 2 > Conv 16@5x5 relu > MaxPool 2 > Flatten > Dense 120 relu >
 * Dense 84 relu > Dense numClasses softmax. For `[28, 28, 1]` and 10 classes it has 44,426
 * parameters.
 *
 * Input: float32 `[batch, 28, 28, 1]`, values in [0, 1], ink bright. Output: float32
 * `[batch, numClasses]` probabilities (softmax). The model is not compiled. Side-effect free.
 *
 * @throws {Error} when the input is too small for two 5x5 convolutions and two poolings.
 */
export function buildLeNet(options: LeNetOptions = {}): tf.LayersModel {
  return buildLeNetShaped(options, { filters: [6, 16], dense: [120, 84], name: 'lenet' });
}

/** Widths of a {@link buildLeNetShaped} network. */
export interface LeNetWidths {
  /** Filters of the two 5x5 convolutions. */
  readonly filters: readonly [number, number];
  /** Units of the hidden dense layers (ReLU), in order; named `fc1`, `fc2`... */
  readonly dense: readonly number[];
  /** The model's name (`lenet`, `digitnet`). */
  readonly name: string;
}

/**
 * The LeNet shape at any width: Conv `filters[0]`@5x5 relu > MaxPool 2 > Conv `filters[1]`@5x5
 * relu > MaxPool 2 > Flatten > Dense `dense[i]` relu... > Dense numClasses softmax, Glorot-uniform
 * weights seeded `seed`, `seed + 1`... in layer order. {@link buildLeNet} is the course's widths;
 * `digitnet.ts` is Caffe's.
 *
 * @throws {Error} when the input is too small for two 5x5 convolutions and two poolings.
 */
export function buildLeNetShaped(options: LeNetOptions, widths: LeNetWidths): tf.LayersModel {
  const inputShape = options.inputShape ?? [28, 28, 1];
  const numClasses = options.numClasses ?? 10;
  const seed = options.seed ?? 42;
  const [h, w] = inputShape;
  if (Math.min(h, w) < 16) {
    throw new Error(`LeNet needs an input of at least 16x16 pixels, got ${h}x${w}`);
  }
  let s = seed;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });

  const inputs = tf.input({ shape: [...inputShape], name: 'image' });
  let x: tf.SymbolicTensor = inputs;
  widths.filters.forEach((filters, i) => {
    x = tf.layers
      .conv2d({
        filters,
        kernelSize: 5,
        activation: 'relu',
        kernelInitializer: init(),
        name: `conv${i + 1}`,
      })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `pool${i + 1}` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  widths.dense.forEach((units, i) => {
    x = tf.layers
      .dense({ units, activation: 'relu', kernelInitializer: init(), name: `fc${i + 1}` })
      .apply(x) as tf.SymbolicTensor;
  });
  const outputs = tf.layers
    .dense({ units: numClasses, activation: 'softmax', kernelInitializer: init(), name: 'probs' })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs, outputs, name: widths.name });
}
