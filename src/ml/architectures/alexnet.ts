import * as tf from '@tensorflow/tfjs';
import { StepSeededDropout } from './dropout.ts';
import { GraphBuilder, seededInit } from './graph-builder.ts';

/** Options of {@link buildAlexNet}. */
export interface AlexNetOptions {
  readonly numClasses?: number;
  /** Seed of the weight initializers and dropout, for reproducible training. */
  readonly seed?: number;
  /**
   * `adapted` (default): the lab's layer sequence with `same` padding in the first conv and the
   * three poolings, so 32x32 shrinks 32 > 8 > 4 > 2 > 1 instead of going negative.
   * `literal`: the sequence as written, with Keras' default `valid` padding where the lab sets
   * none; it fails at the second pooling with a {@link ShapeError} listing every layer's shape.
   */
  readonly variant?: 'adapted' | 'literal';
  /**
   * `batch` (default of the `adapted` variant): batch normalization after every conv, before
   * its ReLU; `none`: the lab's layers only (the engine benchmark uses it, as its PyTorch twin
   * has no normalization). The `literal` variant never normalizes.
   */
  readonly normalization?: 'batch' | 'none';
}

/**
 * Builds the course's AlexNet-like network for CIFAR-10 (lab task 1, after Krizhevsky et al.,
 * "ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS 2012): input
 * 32x32x3 > Conv 96@11x11/4 > MaxPool 3/2 > Conv 256@5x5 same > MaxPool 3/2 > Conv 384@3x3 same
 * x2 > Conv 256@3x3 same > MaxPool 3/2 > Flatten > Dense 4096 > Dropout 0.5 > Dense 4096 >
 * Dropout 0.5 > Dense numClasses softmax, ReLU throughout.
 *
 * Adaptation to 32x32 (the `adapted` variant): AlexNet's strides were chosen for 224x224; taken
 * literally (`valid`, as Keras defaults) the first conv gives 6x6, the first pool 2x2, and the
 * second pool has a 3x3 window over 2x2, a negative size. `same` padding on the first conv and on
 * the three poolings keeps every layer and stride and gives 8x8 > 4x4 > 2x2 > 1x1. What it
 * costs: the conv stack works on tiny maps (the last three convs see 2x2, the dense layers get
 * 256 features), which caps the accuracy; 42.3M MACs per image (24.4M in the convs), 21.6M
 * parameters (17.9M in the dense layers).
 *
 * Normalization: AlexNet normalized the outputs of conv1 and conv2 (local response
 * normalization); the adapted variant uses its modern replacement, batch normalization, after
 * every conv (whose bias it makes redundant). Without it this network learns slowly from a
 * Glorot start: measured here, 29% then 38.5% validation accuracy after epochs 1 and 2 (Adam
 * 3e-4, augmentation), at 12 minutes an epoch. It adds 5,504 parameters (2,752 of them the
 * non-trainable moving statistics) and removes the 1,376 conv biases.
 *
 * Input: float32 `[batch, 32, 32, 3]`, [0, 1]. Output: `[batch, numClasses]` probabilities.
 * Not compiled.
 * @throws {ShapeError} for the `literal` variant (by design) or any input too small.
 */
export function buildAlexNet(options: AlexNetOptions = {}): tf.LayersModel {
  const seed = options.seed ?? 42;
  const literal = options.variant === 'literal';
  const normalize = !literal && (options.normalization ?? 'batch') === 'batch';
  const init = seededInit(seed, 'glorotUniform');
  const dropoutSeed = seed + 1000;
  const conv = (
    name: string,
    filters: number,
    kernelSize: number,
    strides: number,
    same: boolean,
  ): tf.layers.Layer[] => {
    const layer = tf.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides,
      padding: same ? 'same' : 'valid',
      activation: normalize ? 'linear' : 'relu',
      useBias: !normalize,
      kernelInitializer: init(),
    });
    if (!normalize) return [layer];
    return [
      layer,
      tf.layers.batchNormalization({ name: `${name}_bn` }),
      tf.layers.reLU({ name: `${name}_relu` }),
    ];
  };
  const pool = (name: string) =>
    tf.layers.maxPooling2d({ name, poolSize: 3, strides: 2, padding: literal ? 'valid' : 'same' });
  const dense = (name: string, units: number) =>
    tf.layers.dense({ name, units, activation: 'relu', kernelInitializer: init() });
  const g = new GraphBuilder(literal ? 'alexnet_literal' : 'alexnet', [32, 32, 3]);
  const x = g.chain(
    g.input,
    ...conv('conv1', 96, 11, 4, !literal),
    pool('pool1'),
    ...conv('conv2', 256, 5, 1, true),
    pool('pool2'),
    ...conv('conv3', 384, 3, 1, true),
    ...conv('conv4', 384, 3, 1, true),
    ...conv('conv5', 256, 3, 1, true),
    pool('pool5'),
    tf.layers.flatten({ name: 'flatten' }),
    dense('fc6', 4096),
    new StepSeededDropout({ name: 'drop6', rate: 0.5, seed: dropoutSeed }),
    dense('fc7', 4096),
    new StepSeededDropout({ name: 'drop7', rate: 0.5, seed: dropoutSeed + 1 }),
    tf.layers.dense({
      name: 'predictions',
      units: options.numClasses ?? 10,
      activation: 'softmax',
      kernelInitializer: init(),
    }),
  );
  return g.build(x);
}
