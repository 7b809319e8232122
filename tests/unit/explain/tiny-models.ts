/**
 * Tiny classifiers built in code whose answer is known: class 1's score is the brightness of the
 * top-left `corner x corner` square (above mid-grey), and nothing else; class 0's is 0.
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedModel } from '../../../src/ml/registry.ts';

export interface CornerOptions {
  readonly size?: number;
  readonly corner?: number;
  readonly channels?: 1 | 3;
  /** Puts the convolution inside a nested model called `base`. */
  readonly nested?: boolean;
  /** Multiplies the class-1 weights (large: a saturated softmax). */
  readonly gain?: number;
}

/** The corner classifier: input `[size, size, channels]` in [0, 1], output softmax over 2 classes. */
export function buildCornerModel(options: CornerOptions = {}): tf.LayersModel {
  const { size = 16, corner = 4, channels = 1, nested = false, gain = 1 } = options;
  const conv = tf.layers.conv2d({
    filters: 2,
    kernelSize: 1,
    activation: 'relu',
    name: 'features',
    inputShape: [size, size, channels],
  });
  const input = tf.input({ shape: [size, size, channels], name: 'image' });
  let features: tf.SymbolicTensor;
  if (nested) {
    const base = tf.sequential({ name: 'base', layers: [conv] });
    features = base.apply(input) as tf.SymbolicTensor;
  } else features = conv.apply(input) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: 'flatten' }).apply(features) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: 2, activation: 'softmax', name: 'scores' });
  const model = tf.model({ inputs: input, outputs: dense.apply(flat) as tf.SymbolicTensor });
  // Filter 0: brightness above 0.5; filter 1: darkness below 0.5.
  const k = new Float32Array(channels * 2);
  for (let c = 0; c < channels; c++) {
    k[c * 2] = 1 / channels;
    k[c * 2 + 1] = -1 / channels;
  }
  conv.setWeights([tf.tensor4d(k, [1, 1, channels, 2]), tf.tensor1d([-0.5, 0.5])]);
  const w = new Float32Array(size * size * 2 * 2);
  for (let r = 0; r < corner; r++) {
    for (let c = 0; c < corner; c++) w[((r * size + c) * 2 + 0) * 2 + 1] = gain;
  }
  dense.setWeights([tf.tensor2d(w, [size * size * 2, 2]), tf.zeros([2])]);
  return model;
}

/** An image `[size, size, channels]` of `background` with a square of 1s at (x, y). */
export function squareImage(
  options: {
    size?: number;
    channels?: number;
    background?: number;
    x?: number;
    y?: number;
    side?: number;
  } = {},
): Float32Array {
  const { size = 16, channels = 1, background = 0.1, x = 0, y = 0, side = 4 } = options;
  const data = new Float32Array(size * size * channels).fill(background);
  for (let r = y; r < y + side; r++) {
    for (let c = x; c < x + side; c++) {
      for (let ch = 0; ch < channels; ch++) data[(r * size + c) * channels + ch] = 1;
    }
  }
  return data;
}

/** A loaded-model record for a model built in code. */
export function asLoaded(
  model: tf.LayersModel,
  inputShape: [number, number, number],
  preprocess: LoadedModel['meta']['preprocess'] = 'rgb-unit',
): LoadedModel {
  return {
    model,
    dir: '(memory)',
    version: '0',
    meta: {
      id: 'corner',
      architecture: 'corner',
      dataset: 'squares',
      inputShape,
      preprocess,
      classNames: ['plain', 'corner square'],
    },
  };
}
