import * as tf from '@tensorflow/tfjs';
import { StepSeededDropout } from './dropout.ts';
import { GraphBuilder, seededInit } from './graph-builder.ts';

/** One block: output channels and the stride of its 3x3 (depthwise or full) conv. */
export interface BlockSpec {
  readonly filters: number;
  readonly strides: 1 | 2;
}

/** Options of {@link buildMobileNetLike}. */
export interface MobileNetLikeOptions {
  readonly numClasses?: number;
  /** Input `[height, width, channels]`; Fashion-MNIST is `[28, 28, 1]`. */
  readonly inputShape?: readonly [number, number, number];
  /** Output channels of the stem conv (3x3, stride 1); default 16. */
  readonly stemFilters?: number;
  /** The blocks after the stem; default {@link FASHION_BLOCKS}. */
  readonly blocks?: readonly BlockSpec[];
  /**
   * `true` (default): depthwise separable blocks; `false`: the plain CNN of the same depth and
   * widths, one full 3x3 conv per block.
   */
  readonly separable?: boolean;
  readonly seed?: number;
}

/** Five blocks, 28 > 14 > 7 pixels, 32 to 128 channels: small enough to train on a laptop CPU. */
export const FASHION_BLOCKS: readonly BlockSpec[] = [
  { filters: 32, strides: 1 },
  { filters: 64, strides: 2 },
  { filters: 64, strides: 1 },
  { filters: 128, strides: 2 },
  { filters: 128, strides: 1 },
];

/**
 * Builds the MobileNet-like classifier of lab task 4 (Howard et al., "MobileNets: Efficient
 * Convolutional Neural Networks for Mobile Vision Applications", 2017): stem Conv 3x3 > BN >
 * ReLU6, then per block a depthwise 3x3 conv (the block's stride) > BN > ReLU6 > pointwise 1x1
 * conv > BN > ReLU6; global average pooling > Dropout 0.2 > Dense numClasses softmax.
 * With `separable: false` each block is instead one ordinary 3x3 conv > BN > ReLU6 with the same
 * output channels and stride: the "ordinary CNN of the same depth" the lab compares it with.
 * A depthwise separable block costs `k²·C + C·C'` multiply-adds per pixel against `k²·C·C'`.
 *
 * Input: float32 `[batch, 28, 28, 1]`, [0, 1]. Output: `[batch, numClasses]` probabilities.
 * Not compiled.
 * @throws {ShapeError} when the input is too small for the strides.
 */
export function buildMobileNetLike(options: MobileNetLikeOptions = {}): tf.LayersModel {
  const separable = options.separable ?? true;
  const seed = options.seed ?? 42;
  const init = seededInit(seed, 'heNormal');
  const g = new GraphBuilder(
    separable ? 'mobilenet_like' : 'plaincnn',
    options.inputShape ?? [28, 28, 1],
  );
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  const relu6 = (name: string) => tf.layers.reLU({ name, maxValue: 6 });
  let x = g.chain(
    g.input,
    tf.layers.conv2d({
      name: 'stem_conv',
      filters: options.stemFilters ?? 16,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      kernelInitializer: init(),
    }),
    bn('stem_bn'),
    relu6('stem_relu6'),
  );
  for (const [i, block] of (options.blocks ?? FASHION_BLOCKS).entries()) {
    const p = `block${i + 1}`;
    x = separable
      ? g.chain(
          x,
          tf.layers.depthwiseConv2d({
            name: `${p}_dw`,
            kernelSize: 3,
            strides: block.strides,
            padding: 'same',
            useBias: false,
            depthwiseInitializer: init(),
          }),
          bn(`${p}_dw_bn`),
          relu6(`${p}_dw_relu6`),
          tf.layers.conv2d({
            name: `${p}_pw`,
            filters: block.filters,
            kernelSize: 1,
            useBias: false,
            kernelInitializer: init(),
          }),
          bn(`${p}_pw_bn`),
          relu6(`${p}_pw_relu6`),
        )
      : g.chain(
          x,
          tf.layers.conv2d({
            name: `${p}_conv`,
            filters: block.filters,
            kernelSize: 3,
            strides: block.strides,
            padding: 'same',
            useBias: false,
            kernelInitializer: init(),
          }),
          bn(`${p}_bn`),
          relu6(`${p}_relu6`),
        );
  }
  x = g.chain(
    x,
    tf.layers.globalAveragePooling2d({ name: 'avg_pool' }),
    new StepSeededDropout({ name: 'dropout', rate: 0.2, seed: seed + 1000 }),
    tf.layers.dense({
      name: 'predictions',
      units: options.numClasses ?? 10,
      activation: 'softmax',
      kernelInitializer: seededInit(seed + 2000, 'glorotUniform')(),
    }),
  );
  return g.build(x);
}
