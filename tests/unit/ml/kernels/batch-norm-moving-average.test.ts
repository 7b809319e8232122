import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MOVING_AVERAGES,
  registerFusedMovingAverages,
  unregisterFusedMovingAverages,
} from '../../../../src/ml/kernels/batch-norm-moving-average.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { randomValues } from './reference.ts';

/**
 * Batch norm's moving averages as one kernel per layer (`batch-norm-moving-average.ts`): the
 * moving mean and variance, the losses and the trained weights of a few training steps bit for
 * bit those of tfjs-layers' own `call` (three kernels per average), on wasm and on cpu.
 */

/** What a few steps of training leave: losses, then every weight (moving averages included). */
interface Trained {
  losses: number[];
  weights: Float32Array[];
  kernels: string[];
}

async function train(backend: string, fused: boolean, momentum: number): Promise<Trained> {
  await tf.setBackend(backend);
  if (fused) registerFusedMovingAverages();
  else unregisterFusedMovingAverages();
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [6, 6, 3],
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: tf.initializers.randomNormal({ seed: 3 }),
      }),
      tf.layers.batchNormalization({ momentum }),
      tf.layers.reLU(),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5, kernelInitializer: 'ones' }),
      tf.layers.batchNormalization({ momentum }), // rank 2
      tf.layers.dense({
        units: 2,
        activation: 'softmax',
        kernelInitializer: tf.initializers.randomNormal({ seed: 4 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = tf.tensor4d(
    randomValues(7 * 6 * 6 * 3, 11).map((v) => 2 + 3 * v),
    [7, 6, 6, 3],
  );
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 1], 'int32'), 2);
  const losses: number[] = [];
  await model.trainOnBatch(x, y); // optimizer slots created
  const before = tf.memory().numTensors;
  const info = await tf.profile(async () => {
    for (let s = 0; s < 3; s++) losses.push((await model.trainOnBatch(x, y)) as number);
    return [];
  });
  expect(tf.memory().numTensors).toBe(before);
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  // Inference reads the moving averages: its output must agree too.
  weights.push(tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array));
  tf.dispose([x, y]);
  model.dispose();
  return { losses, weights, kernels: info.kernels.map((k) => k.name) };
}

describe('batch norm moving averages in one kernel', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it.each([
    { backend: 'wasm', momentum: 0.99 },
    { backend: 'wasm', momentum: 0.9 },
    { backend: 'cpu', momentum: 0.99 },
  ])(
    'trains bit for bit as tfjs-layers does ($backend, momentum $momentum)',
    async ({ backend, momentum }) => {
      const reference = await train(backend, false, momentum);
      const fused = await train(backend, true, momentum);
      expect(reference.kernels).not.toContain(MOVING_AVERAGES);
      // One kernel per layer and step: 2 layers × 3 steps.
      expect(fused.kernels.filter((k) => k === MOVING_AVERAGES)).toHaveLength(6);
      expect(fused.kernels.length).toBeLessThan(reference.kernels.length - 5 * 6);
      expect(fused.losses).toEqual(reference.losses);
      expect(fused.weights).toHaveLength(reference.weights.length);
      fused.weights.forEach((w, i) => {
        expect(w).toEqual(reference.weights[i]);
      });
      // The moving averages moved off their initial values (zeros and ones).
      const movingMean = fused.weights[4]!;
      expect(movingMean.some((v) => v !== 0)).toBe(true);
      registerFusedMovingAverages();
    },
  );

  it('leaves inference and batch norm over other axes to tfjs-layers', async () => {
    await tf.setBackend('wasm');
    registerFusedMovingAverages();
    const layer = tf.layers.batchNormalization({ axis: 1 });
    const x = tf.tensor4d(randomValues(2 * 4 * 3 * 3, 5), [2, 4, 3, 3]);
    const info = await tf.profile(() => {
      const a = layer.apply(x, { training: true }) as tf.Tensor;
      const b = layer.apply(x) as tf.Tensor;
      tf.dispose([a, b]);
      return [];
    });
    expect(info.kernelNames).not.toContain(MOVING_AVERAGES);
    expect(info.kernelNames).toContain('Sub');
    const movingMean = layer.getWeights()[2]!.dataSync();
    expect([...movingMean].some((v) => v !== 0)).toBe(true);
    layer.dispose();
    x.dispose();
  });

  it('rejects inputs of other sizes', async () => {
    await tf.setBackend('wasm');
    const a = tf.zeros([4]);
    const b = tf.zeros([5]);
    expect(() =>
      tf
        .engine()
        .runKernel(
          MOVING_AVERAGES,
          { movingMean: a, movingVariance: a, mean: a, variance: b },
          { decay: 0.01 },
        ),
    ).toThrow(/one size/);
    tf.dispose([a, b]);
  });
});
