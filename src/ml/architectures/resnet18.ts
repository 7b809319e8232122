import * as tf from '@tensorflow/tfjs';
import { GraphBuilder, seededInit } from './graph-builder.ts';

/** Options of {@link buildResNet18}. */
export interface ResNet18Options {
  readonly numClasses?: number;
  /** Input `[height, width, channels]`; CIFAR-10 is `[32, 32, 3]`. */
  readonly inputShape?: readonly [number, number, number];
  /**
   * Inner (3x3) width of the bottleneck blocks of each of the four stages; the block outputs
   * `expansion` times as many channels. Default `[16, 32, 64, 128]`: with the default expansion
   * of 4 the stages output ResNet-18's 64, 128, 256 and 512 channels. (ResNet-50's inner widths,
   * `[64, 128, 256, 512]`, give 2048 channels, 14.0M parameters and 5.6x the training time per
   * sample on this engine: 45 samples/s against 253 on one core.)
   */
  readonly widths?: readonly [number, number, number, number];
  /** Output channels of a block over its inner width; default 4 (He et al.'s bottleneck). */
  readonly expansion?: number;
  /**
   * `true` (default): residual blocks, `y = relu(F(x) + shortcut(x))`, the shortcut being the
   * identity or, where the shape changes, a 1x1 projection with batch norm (He et al.'s option
   * B). `false`: the plain twin, the same convs in the same order with no shortcut at all.
   */
  readonly shortcuts?: boolean;
  readonly seed?: number;
}

/**
 * Builds the course's ResNet-18 for CIFAR-10 (lab task 3) after He et al., "Deep Residual
 * Learning for Image Recognition" (CVPR 2016): stem Conv 64@7x7/2 > BN > ReLU > MaxPool 3x3/2,
 * four stages of [2, 2, 2, 2] bottleneck blocks (1x1 reduce > 3x3 > 1x1 expand, each conv
 * followed by batch norm, ReLU after the first two and after the addition; stride 2 in the 3x3
 * of the first block of stages 2-4), global average pooling > Dense numClasses softmax.
 * The lab asks for "ResNet-18" with bottleneck blocks: the [2, 2, 2, 2] layout of ResNet-18 with
 * ResNet-50's block, so 26 weight layers rather than 18. With `shortcuts: false` it is the plain
 * CNN of the same depth and widths the lab compares it with.
 *
 * On 32x32 the stem leaves 8x8, and the stages work at 8, 4, 2 and 1 pixels. 0.90M parameters
 * (the plain twin 0.72M: no projections).
 *
 * Input: float32 `[batch, 32, 32, 3]`, [0, 1]. Output: `[batch, numClasses]` probabilities.
 * Not compiled.
 * @throws {ShapeError} when the input is too small for the stem and the strides.
 */
export function buildResNet18(options: ResNet18Options = {}): tf.LayersModel {
  const residual = options.shortcuts ?? true;
  const widths = options.widths ?? [16, 32, 64, 128];
  const expansion = options.expansion ?? 4;
  const init = seededInit(options.seed ?? 42, 'heNormal');
  const g = new GraphBuilder(
    residual ? 'resnet18' : 'plaincnn18',
    options.inputShape ?? [32, 32, 3],
  );
  const conv = (name: string, filters: number, kernelSize: number, strides = 1) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: init(),
    });
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  const relu = (name: string) => tf.layers.reLU({ name });

  let x = g.chain(
    g.input,
    conv('stem_conv', 64, 7, 2),
    bn('stem_bn'),
    relu('stem_relu'),
    tf.layers.maxPooling2d({ name: 'stem_pool', poolSize: 3, strides: 2, padding: 'same' }),
  );
  let channels = 64;
  for (const [s, width] of widths.entries()) {
    for (let b = 0; b < 2; b++) {
      const p = `stage${s + 1}_block${b + 1}`;
      const strides = s > 0 && b === 0 ? 2 : 1;
      const out = width * expansion;
      const y = g.chain(
        x,
        conv(`${p}_reduce`, width, 1),
        bn(`${p}_reduce_bn`),
        relu(`${p}_reduce_relu`),
        conv(`${p}_conv`, width, 3, strides),
        bn(`${p}_conv_bn`),
        relu(`${p}_conv_relu`),
        conv(`${p}_expand`, out, 1),
        bn(`${p}_expand_bn`),
      );
      if (residual) {
        const shortcut =
          strides === 1 && channels === out
            ? x
            : g.chain(x, conv(`${p}_proj`, out, 1, strides), bn(`${p}_proj_bn`));
        x = g.apply(tf.layers.add({ name: `${p}_add` }), [y, shortcut]);
      } else {
        x = y;
      }
      x = g.apply(relu(`${p}_out`), x);
      channels = out;
    }
  }
  x = g.chain(
    x,
    tf.layers.globalAveragePooling2d({ name: 'avg_pool' }),
    tf.layers.dense({
      name: 'predictions',
      units: options.numClasses ?? 10,
      activation: 'softmax',
      kernelInitializer: seededInit((options.seed ?? 42) + 1000, 'glorotUniform')(),
    }),
  );
  return g.build(x);
}
