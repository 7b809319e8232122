import * as tf from '@tensorflow/tfjs';

/** Options of {@link buildAlexNet}. */
export interface AlexNetOptions {
  readonly numClasses?: number;
  /** Seed of the weight initializers, for reproducible training. */
  readonly seed?: number;
}

/**
 * Builds the course's AlexNet-like network for 32x32x3 input (Krizhevsky et al., NeurIPS 2012,
 * as the lab sets it): Conv 96@11x11/4 > MaxPool 3/2 > Conv 256@5x5 > MaxPool 3/2 >
 * Conv 384@3x3 x2 > Conv 256@3x3 > MaxPool 3/2 > Dense 4096 > Dropout 0.5 > Dense 4096 >
 * Dropout 0.5 > Dense numClasses softmax, ReLU throughout, 21.6M parameters.
 *
 * Adaptation to 32x32: every conv and pooling uses 'same' padding (32 > 8 > 4 > 2 > 1 pixels);
 * with 'valid' pooling the lab's sequence reaches a negative size after the second pool. The
 * model zoo (issue 6) owns the documented, shape-checked version; this one gives the benchmark
 * the same compute.
 *
 * Input: float32 `[batch, 32, 32, 3]`. Output: `[batch, numClasses]` probabilities. Not compiled.
 */
export function buildAlexNet(options: AlexNetOptions = {}): tf.LayersModel {
  let seed = options.seed ?? 42;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const conv = (filters: number, kernelSize: number, strides = 1) =>
    tf.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
    });
  const pool = () => tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' });
  const dense = (units: number) =>
    tf.layers.dense({ units, activation: 'relu', kernelInitializer: init() });
  return tf.sequential({
    name: 'alexnet',
    layers: [
      tf.layers.inputLayer({ inputShape: [32, 32, 3] }),
      conv(96, 11, 4),
      pool(),
      conv(256, 5),
      pool(),
      conv(384, 3),
      conv(384, 3),
      conv(256, 3),
      pool(),
      tf.layers.flatten(),
      dense(4096),
      tf.layers.dropout({ rate: 0.5, seed: seed++ }),
      dense(4096),
      tf.layers.dropout({ rate: 0.5, seed: seed++ }),
      tf.layers.dense({
        units: options.numClasses ?? 10,
        activation: 'softmax',
        kernelInitializer: init(),
      }),
    ],
  });
}
