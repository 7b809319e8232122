import type * as tf from '@tensorflow/tfjs';
import { buildLeNetShaped, type LeNetOptions } from './lenet.ts';

/** Options of {@link buildDigitNet}: those of the course's LeNet. */
export type DigitNetOptions = LeNetOptions;

/**
 * Builds the wider LeNet of the bot's photo model `digits-photo` (docs/models.md, "A wider
 * network", candidate C2): the
 * layers of Caffe's MNIST LeNet (Jia et al. 2014, "Caffe", `examples/mnist/lenet.prototxt`:
 * Conv 20@5x5 > MaxPool 2 > Conv 50@5x5 > MaxPool 2 > Dense 500 ReLU > Dense numClasses), with
 * ReLU after each convolution. It has the course LeNet's shape (two 5x5 convolutions, two poolings, dense
 * layers) at about ten times its width: 431,080 parameters for `[28, 28, 1]` and 10 classes,
 * about 2.3 M multiply-adds per image against LeNet's 0.28 M. The course's `lenet-mnist` keeps
 * its own layers (`lenet.ts`); both are built by {@link buildLeNetShaped}.
 *
 * Input: float32 `[batch, 28, 28, 1]`, values in [0, 1], ink bright. Output: float32
 * `[batch, numClasses]` probabilities (softmax). The model is not compiled. Side-effect free.
 *
 * @throws {Error} when the input is too small for two 5x5 convolutions and two poolings.
 */
export function buildDigitNet(options: DigitNetOptions = {}): tf.LayersModel {
  return buildLeNetShaped(options, { filters: [20, 50], dense: [500], name: 'digitnet' });
}
