import * as tf from '@tensorflow/tfjs';

/** Options of {@link buildDigitNet}. */
export interface DigitNetOptions {
  /** Input `[height, width, channels]`; MNIST is `[28, 28, 1]`. */
  readonly inputShape?: readonly [number, number, number];
  /** Number of classes of the softmax output. */
  readonly numClasses?: number;
  /** Seed of the weight initializers, for reproducible training. */
  readonly seed?: number;
}

/**
 * Builds a wider LeNet, measured as a candidate for the bot's photo model `digits-photo` and not
 * shipped (docs/models.md, "A wider network"; the recipe change that trains it is there): the
 * layers of Caffe's MNIST
 * LeNet (Jia et al. 2014, "Caffe", `examples/mnist/lenet.prototxt`: Conv 20@5x5 > MaxPool 2 >
 * Conv 50@5x5 > MaxPool 2 > Dense 500 ReLU > Dense numClasses), with ReLU after each
 * convolution. It has the course LeNet's shape (two 5x5 convolutions, two poolings, dense
 * layers) at about ten times its width: 431,080 parameters for `[28, 28, 1]` and 10 classes,
 * about 2.3 M multiply-adds per image against LeNet's 0.28 M. The course's
 * `lenet-mnist` keeps its own layers (`lenet.ts`).
 *
 * Input: float32 `[batch, 28, 28, 1]`, values in [0, 1], ink bright. Output: float32
 * `[batch, numClasses]` probabilities (softmax). The model is not compiled. Side-effect free.
 *
 * @throws {Error} when the input is too small for two 5x5 convolutions and two poolings.
 */
export function buildDigitNet(options: DigitNetOptions = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? [28, 28, 1];
  const numClasses = options.numClasses ?? 10;
  const [h, w] = inputShape;
  if (Math.min(h, w) < 16) {
    throw new Error(`DigitNet needs an input of at least 16x16 pixels, got ${h}x${w}`);
  }
  let s = options.seed ?? 42;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });
  const inputs = tf.input({ shape: [...inputShape], name: 'image' });
  let x = tf.layers
    .conv2d({
      filters: 20,
      kernelSize: 5,
      activation: 'relu',
      kernelInitializer: init(),
      name: 'conv1',
    })
    .apply(inputs) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({
      filters: 50,
      kernelSize: 5,
      activation: 'relu',
      kernelInitializer: init(),
      name: 'conv2',
    })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .dense({ units: 500, activation: 'relu', kernelInitializer: init(), name: 'fc1' })
    .apply(x) as tf.SymbolicTensor;
  const outputs = tf.layers
    .dense({ units: numClasses, activation: 'softmax', kernelInitializer: init(), name: 'probs' })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs, outputs, name: 'digitnet' });
}
