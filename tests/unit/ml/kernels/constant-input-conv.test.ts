import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fusedConv2d } from '../../../../src/ml/kernels/constant-input-conv.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { randomValues, relativeError } from './reference.ts';

/**
 * The fused convolution that skips the input gradient of a constant input
 * (`constant-input-conv.ts`): the same loss and filter and bias gradients as the cpu backend's
 * fused convolution, without a `Conv2DBackpropInput`, and the full gradient still where the
 * input depends on a differentiated tensor.
 */

const X_SHAPE = [3, 9, 9, 3] as const;
const W_SHAPE = [3, 3, 3, 16] as const;

/** Loss, dW, db (and the input scale's gradient when `xFromVariable`) of sum(sin(conv(x))), and the kernels run. */
async function run(
  backend: string,
  xFromVariable: boolean,
  strides: 1 | 2,
): Promise<{ values: Float32Array[]; kernels: string[] }> {
  await tf.setBackend(backend);
  let values: Float32Array[] = [];
  const before = tf.memory().numTensors;
  const info = await tf.profile(() => {
    values = tf.tidy(() => {
      const images = tf.tensor4d(randomValues(3 * 9 * 9 * 3, 31), [...X_SHAPE]);
      const w = tf.tensor4d(randomValues(3 * 3 * 3 * 16, 32), [...W_SHAPE]);
      const b = tf.tensor1d(randomValues(16, 33));
      const scale = tf.tensor1d(randomValues(3, 34).map((v) => 1 + v));
      const loss = (x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor) =>
        tf.sum(
          tf.sin(
            fusedConv2d({
              x: x as tf.Tensor4D,
              filter: filter as tf.Tensor4D,
              bias,
              strides,
              pad: 'same',
            }),
          ),
        );
      // A differentiated input: the images times a weight being differentiated.
      const { value, grads } = xFromVariable
        ? tf.valueAndGrads((filter: tf.Tensor, bias: tf.Tensor, s: tf.Tensor) =>
            loss(tf.mul(images, s), filter, bias),
          )([w, b, scale])
        : tf.valueAndGrads((filter: tf.Tensor, bias: tf.Tensor) => loss(images, filter, bias))([
            w,
            b,
          ]);
      return [value, ...grads].map((t) => t.dataSync() as Float32Array);
    });
    return [];
  });
  expect(tf.memory().numTensors).toBe(before);
  return { values, kernels: info.kernelNames };
}

describe('a fused convolution of a constant input', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it.each([1, 2] as const)(
    'stride %i: the cpu backend’s loss and filter and bias gradients, no input gradient',
    async (strides) => {
      const cpu = await run('cpu', false, strides);
      const wasm = await run('wasm', false, strides);
      expect(wasm.kernels).toContain(tf.Conv2DBackpropFilter);
      expect(wasm.kernels).not.toContain(tf.Conv2DBackpropInput);
      expect(wasm.values).toHaveLength(3);
      wasm.values.forEach((v, i) => expect(relativeError(v, cpu.values[i]!)).toBeLessThan(1e-5));
    },
  );

  it('skips it for a Keras Conv2D layer without bias on the model’s input, trained as on cpu', async () => {
    const train = async (backend: string) => {
      await tf.setBackend(backend);
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({
            inputShape: [6, 6, 3],
            filters: 8,
            kernelSize: 3,
            useBias: false,
            kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
          }),
          tf.layers.flatten(),
          tf.layers.dense({
            units: 2,
            activation: 'softmax',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }),
          }),
        ],
      });
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
      const x = tf.tensor4d(randomValues(4 * 6 * 6 * 3, 41), [4, 6, 6, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 1, 0], 'int32'), 2);
      const info = await tf.profile(async () => {
        await model.trainOnBatch(x, y);
        return [];
      });
      const kernel = model.getWeights()[0]!.dataSync() as Float32Array;
      tf.dispose([x, y]);
      model.dispose();
      return { kernel, kernels: info.kernelNames };
    };
    const wasm = await train('wasm');
    const cpu = await train('cpu');
    expect(wasm.kernels).toContain(tf.Conv2DBackpropFilter);
    expect(wasm.kernels).not.toContain(tf.Conv2DBackpropInput);
    // The op is backend-neutral: the cpu backend skips it too.
    expect(cpu.kernels).not.toContain(tf.Conv2DBackpropInput);
    expect(relativeError(wasm.kernel, cpu.kernel)).toBeLessThan(1e-5);
  });

  it('still computes the input gradient where the input depends on a differentiated tensor', async () => {
    const cpu = await run('cpu', true, 1);
    const wasm = await run('wasm', true, 1);
    expect(wasm.kernels).toContain(tf.Conv2DBackpropInput);
    expect(wasm.values[3]!.some((v) => v !== 0)).toBe(true);
    wasm.values.forEach((v, i) => expect(relativeError(v, cpu.values[i]!)).toBeLessThan(1e-5));
  });
});
