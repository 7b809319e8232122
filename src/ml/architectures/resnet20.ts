import * as tf from '@tensorflow/tfjs';

/** Options of {@link buildResNet20}. */
export interface ResNet20Options {
  /** Input `[height, width, channels]`; CIFAR-10 is `[32, 32, 3]`. */
  readonly inputShape?: readonly [number, number, number];
  readonly numClasses?: number;
  /** Seed of the weight initializers, for reproducible training. */
  readonly seed?: number;
}

/**
 * Builds the CIFAR ResNet-20 of He et al., "Deep Residual Learning for Image Recognition" (CVPR
 * 2016, §4.2): Conv 16@3x3 > 3 stages of 3 basic blocks (two 3x3 convs with batch norm) at
 * widths 16, 32, 64, the first block of stages 2 and 3 with stride 2 and a 1x1 projection
 * shortcut (the paper's option B) > global average pooling > Dense numClasses softmax.
 * 0.27M parameters for CIFAR-10.
 *
 * Input: float32 `[batch, 32, 32, 3]`. Output: `[batch, numClasses]` probabilities. Not compiled.
 */
export function buildResNet20(options: ResNet20Options = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? [32, 32, 3];
  let seed = options.seed ?? 42;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number) =>
    tf.layers
      .conv2d({
        filters,
        kernelSize,
        strides,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(),
      })
      .apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU().apply(x) as tf.SymbolicTensor;

  const inputs = tf.input({ shape: [...inputShape] });
  let x = relu(bn(conv(inputs, 16, 3, 1)));
  for (const [stage, width] of [16, 32, 64].entries()) {
    for (let block = 0; block < 3; block++) {
      const strides = stage > 0 && block === 0 ? 2 : 1;
      const y = bn(conv(relu(bn(conv(x, width, 3, strides))), width, 3, 1));
      const shortcut = strides === 1 ? x : bn(conv(x, width, 1, strides));
      x = relu(tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor);
    }
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const outputs = tf.layers
    .dense({ units: options.numClasses ?? 10, activation: 'softmax', kernelInitializer: init() })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs, outputs, name: 'resnet20' });
}
