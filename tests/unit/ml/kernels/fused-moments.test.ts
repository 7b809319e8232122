import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import {
  BATCH_NORM_TRAIN_GRAD,
  MOMENTS,
  MOMENTS_GRAD,
  fusedMoments,
} from '../../../../src/ml/kernels/fused-moments.ts';
import { randomValues, relativeError } from './reference.ts';

/**
 * The moments as one kernel each way (`fused-moments.ts`): the mean and variance of tfjs-core's
 * within float32 rounding, and gradients of any use of both that match the cpu backend's, called directly
 * and through tfjs-layers' batch norm in training (which reads `moments` from tfjs-core's
 * CommonJS exports at each call; an ES import of `tf.moments` is a snapshot taken at import).
 */

/** A loss using both moments, its value and its gradient with respect to x. */
function lossAndGrad(x: tf.Tensor, axes: number[]): Float32Array[] {
  return tf.tidy(() => {
    const w = tf.tensor1d(randomValues(x.shape.at(-1)!, 3));
    const f = (a: tf.Tensor) => {
      const { mean, variance } = fusedMoments(a, axes);
      return tf.sum(tf.add(tf.mul(tf.sin(mean), w), tf.mul(tf.sqrt(tf.add(variance, 1e-3)), w)));
    };
    const { mean, variance } = fusedMoments(x, axes);
    const { value, grad } = tf.valueAndGrad(f)(x);
    return [mean, variance, value, grad].map((t) => t.dataSync() as Float32Array);
  });
}

async function onBackend(name: string, run: () => Float32Array[]): Promise<Float32Array[]> {
  await tf.setBackend(name);
  return run();
}

/** The kernels `run` ran, by name. */
async function kernelsOf(run: () => unknown): Promise<string[]> {
  const info = await tf.profile(async () => {
    await run();
    return [];
  });
  return info.kernelNames;
}

describe('fused moments', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it.each([
    { shape: [4, 6, 5, 16], axes: [0, 1, 2] },
    { shape: [37, 8], axes: [0] },
    { shape: [3, 4, 7, 12], axes: [2, 0, 1] },
    // 21 channels: a 16-lane group, a 4-lane group and one alone; 400 rows span two blocks.
    { shape: [4, 10, 10, 21], axes: [0, 1, 2] },
  ])('$shape over $axes: the cpu backend’s moments and gradient, tensors flat', async (c) => {
    const values = randomValues(
      c.shape.reduce((p, d) => p * d, 1),
      7,
    ).map((v) => 3 + 2 * v); // a mean well away from zero
    const make = () => tf.tensor(values, c.shape);
    const cpu = await onBackend('cpu', () => {
      const x = make();
      const r = lossAndGrad(x, c.axes);
      x.dispose();
      return r;
    });
    let wasm: Float32Array[] = [];
    await tf.setBackend('wasm');
    const ran = await kernelsOf(() => {
      const x = make();
      const before = tf.memory().numTensors;
      wasm = lossAndGrad(x, c.axes);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });
    expect(ran).toContain(MOMENTS); // the two-pass statistics ran
    expect(ran).toContain(MOMENTS_GRAD); // the one-pass gradient ran
    wasm.forEach((v, i) => expect(relativeError(v, cpu[i]!)).toBeLessThan(1e-5));
  });

  it('gives NaN statistics for a channel holding NaN, as tfjs-core does', async () => {
    await tf.setBackend('wasm');
    const values = randomValues(2 * 3 * 3 * 8, 5);
    values[8 * 4 + 2] = Number.NaN;
    const [mean, variance] = tf.tidy(() => {
      const m = fusedMoments(tf.tensor(values, [2, 3, 3, 8]), [0, 1, 2]);
      return [m.mean.dataSync(), m.variance.dataSync()];
    });
    expect(Number.isNaN(mean[2])).toBe(true);
    expect(Number.isNaN(variance[2])).toBe(true);
    expect([...mean].filter((v) => Number.isNaN(v))).toHaveLength(1);
    expect([...variance].filter((v) => Number.isNaN(v))).toHaveLength(1);
  });

  it('leaves other moments to tfjs-core (keepDims, fewer than 4 channels, other axes)', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(randomValues(2 * 3 * 4 * 8, 9), [2, 3, 4, 8]);
    let grads: Float32Array[] = [];
    const ran = await kernelsOf(() => {
      grads = tf.tidy(() =>
        [
          (a: tf.Tensor) => tf.sum(fusedMoments(a, [0, 1, 2], true).variance),
          (a: tf.Tensor) => tf.sum(fusedMoments(a, [1, 2]).variance),
          (a: tf.Tensor) =>
            tf.sum(fusedMoments(tf.slice(a, [0, 0, 0, 0], [2, 3, 4, 3]), [0, 1, 2]).variance),
        ].map((f) => tf.grad(f)(x).dataSync() as Float32Array),
      );
    });
    expect(ran).not.toContain(MOMENTS_GRAD);
    expect(ran).not.toContain(MOMENTS);
    expect(grads).toHaveLength(3);
    // Σ of the variance over [0, 1, 2] has the gradient 2(x − mean)/N per channel; it sums to 0.
    const sum = grads[0]!.reduce((p, v) => p + v, 0);
    expect(Math.abs(sum)).toBeLessThan(1e-5);
    x.dispose();
  });

  it('gives batch norm over its own statistics the cpu backend’s gradients, 4-D', async () => {
    // tfjs-layers calls batchNorm4d through tfjs-core's CommonJS exports, as this does.
    const core = createRequire(import.meta.url)('@tensorflow/tfjs-core') as {
      batchNorm4d: typeof tf.batchNorm4d;
    };
    const shape = [3, 5, 6, 21];
    const xs = randomValues(3 * 5 * 6 * 21, 17).map((v) => 2 + 3 * v);
    const run = () =>
      tf.tidy(() => {
        const w = tf.tensor4d(
          randomValues(xs.length, 18),
          shape as [number, number, number, number],
        );
        const f = (x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) => {
          const { mean, variance } = fusedMoments(x, [0, 1, 2]);
          const y = core.batchNorm4d(
            x as tf.Tensor4D,
            mean as tf.Tensor1D,
            variance as tf.Tensor1D,
            offset as tf.Tensor1D,
            scale as tf.Tensor1D,
            1e-3,
          );
          return tf.sum(tf.mul(tf.sin(y), w));
        };
        const inputs = [
          tf.tensor(xs, shape),
          tf.tensor1d(randomValues(21, 19).map((v) => 1 + v)),
          tf.tensor1d(randomValues(21, 20)),
        ];
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        return [value, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const cpu = await onBackend('cpu', run);
    let wasm: Float32Array[] = [];
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const ran = await kernelsOf(() => {
      wasm = run();
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(ran).toContain(BATCH_NORM_TRAIN_GRAD);
    expect(ran).not.toContain(MOMENTS_GRAD);
    expect(wasm).toHaveLength(4);
    wasm.forEach((v, i) => expect(relativeError(v, cpu[i]!)).toBeLessThan(1e-5));
  });

  it('trains a batch-norm layer as tfjs-core’s moments do', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [6], units: 8, kernelInitializer: 'ones' }),
          tf.layers.batchNormalization(),
          tf.layers.dense({ units: 2, kernelInitializer: 'ones', activation: 'softmax' }),
        ],
      });
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
      const x = tf.tensor2d(randomValues(10 * 6, 11), [10, 6]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 0, 1, 1, 1], 'int32'), 2);
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) losses.push((await model.trainOnBatch(x, y)) as number);
      tf.dispose([x, y]);
      model.dispose();
      return losses;
    };
    let wasm: number[] = [];
    const ran = await kernelsOf(async () => {
      wasm = await run('wasm');
    });
    // Batch norm over its own statistics: one gradient kernel; the moments' never runs.
    expect(ran).toContain(MOMENTS);
    expect(ran).toContain(BATCH_NORM_TRAIN_GRAD);
    expect(ran).not.toContain(MOMENTS_GRAD);
    const cpu = await run('cpu');
    expect(wasm[2]).toBeLessThan(wasm[0]!);
    wasm.forEach((l, i) => expect(Math.abs(l - cpu[i]!)).toBeLessThan(1e-5 * cpu[i]!));
  });
});
