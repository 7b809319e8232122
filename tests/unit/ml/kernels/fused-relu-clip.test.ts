import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import {
  RELU_CLIP_GRAD,
  fusedRelu6,
  registerFusedRelu6,
  unregisterFusedRelu6,
} from '../../../../src/ml/kernels/fused-relu-clip.ts';
import { randomValues } from './reference.ts';

/**
 * ReLU6 as one kernel each way (`fused-relu-clip.ts`): values and gradients bit for bit those of
 * tfjs-layers' `clipByValue(relu(x), 0, 6)` (on wasm and against the cpu backend), and a
 * MobileNet-like model trained bit for bit as with tfjs-layers' own `ReLU` layer.
 */

/** Values around 0 and 6 (both signs of zero, exactly 6, beyond), then random ones. */
function edgeValues(n: number): Float32Array {
  const v = Float32Array.from(randomValues(n, 21), (r) => 8 * r);
  v.set([0, -0, 6, 6.000001, 5.999999, -1e-30, 1e-30, 7, -7, 3], 0);
  return v;
}

/** `[y, dx]` of `sum(f(x)·w)`, dy `w` with both signs and zeros. */
function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, xs: Float32Array): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor(xs, [xs.length]);
    const w = tf.tensor(
      Float32Array.from(randomValues(xs.length, 22), (r, i) => (i % 7 === 0 ? -0 : r)),
    );
    const y = f(x);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), w)))(x);
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
  });
}

const reference = (x: tf.Tensor) => tf.clipByValue(tf.relu(x), 0, 6);

async function trainMobileNetLike(
  fused: boolean,
): Promise<{ losses: number[]; weights: Float32Array[]; kernels: string[] }> {
  await tf.setBackend('wasm');
  if (fused) registerFusedRelu6();
  else unregisterFusedRelu6();
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 3],
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: tf.initializers.randomNormal({ seed: 5, stddev: 2 }),
      }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.depthwiseConv2d({
        kernelSize: 3,
        padding: 'same',
        depthwiseInitializer: tf.initializers.randomNormal({ seed: 6, stddev: 2 }),
      }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({
        units: 3,
        activation: 'softmax',
        kernelInitializer: tf.initializers.randomNormal({ seed: 7 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = tf.tensor4d(
    randomValues(5 * 8 * 8 * 3, 23).map((v) => 2 * v),
    [5, 8, 8, 3],
  );
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0], 'int32'), 3);
  const losses: number[] = [];
  await model.trainOnBatch(x, y);
  const before = tf.memory().numTensors;
  const info = await tf.profile(async () => {
    for (let s = 0; s < 3; s++) losses.push((await model.trainOnBatch(x, y)) as number);
    return [];
  });
  expect(tf.memory().numTensors).toBe(before);
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  model.dispose();
  return { losses, weights, kernels: info.kernels.map((k) => k.name) };
}

describe('ReLU6 in one kernel each way', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
    registerFusedRelu6();
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it('gives clipByValue(relu(x), 0, 6)’s values and gradient bit for bit, wasm and cpu', async () => {
    const xs = edgeValues(1003); // not a multiple of 4: the scalar tail runs too
    await tf.setBackend('cpu');
    const cpu = valueAndGrad(reference, xs);
    await tf.setBackend('wasm');
    const chain = valueAndGrad(reference, xs);
    const before = tf.memory().numTensors;
    let fused: Float32Array[] = [];
    const info = await tf.profile(() => {
      fused = valueAndGrad(fusedRelu6, xs);
      return [];
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(info.kernelNames).toContain(RELU_CLIP_GRAD);
    expect(info.kernelNames).not.toContain('ClipByValue');
    expect(fused[0]).toEqual(chain[0]);
    expect(fused[1]).toEqual(chain[1]);
    expect(fused[0]).toEqual(cpu[0]);
    expect(fused[1]).toEqual(cpu[1]);
    // Beyond 6 and at or below 0 the gradient is zero, in between it is dy.
    expect(fused[1]![7]).toBe(0);
    expect(fused[1]![2]).not.toBe(0);
  });

  it('trains a MobileNet-like model bit for bit as tfjs-layers’ ReLU layer does', async () => {
    const reference = await trainMobileNetLike(false);
    const fused = await trainMobileNetLike(true);
    const count = (k: string[], name: string) => k.filter((n) => n === name).length;
    // 2 layers × 3 steps (the loss clips its probabilities once a step too).
    expect(count(reference.kernels, 'ClipByValue') - count(fused.kernels, 'ClipByValue')).toBe(6);
    expect(count(reference.kernels, 'Relu6')).toBe(0);
    expect(count(fused.kernels, 'Relu6')).toBe(6);
    expect(count(fused.kernels, RELU_CLIP_GRAD)).toBe(6);
    expect(fused.losses).toEqual(reference.losses);
    fused.weights.forEach((w, i) => expect(w).toEqual(reference.weights[i]));
    registerFusedRelu6();
  });

  it('leaves ReLU layers without maxValue 6 to tfjs-layers', async () => {
    await tf.setBackend('wasm');
    registerFusedRelu6();
    const x = tf.tensor1d([-1, 2, 9]);
    const info = await tf.profile(() => {
      const a = tf.layers.reLU({ maxValue: 4 }).apply(x) as tf.Tensor;
      expect([...a.dataSync()]).toEqual([0, 2, 4]);
      const b = tf.layers.reLU().apply(x) as tf.Tensor;
      expect([...b.dataSync()]).toEqual([0, 2, 9]);
      tf.dispose([a, b]);
      return [];
    });
    expect(info.kernelNames).toContain('ClipByValue');
    expect(info.kernelNames).not.toContain('Relu6');
    x.dispose();
  });
});
