import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  registerBatchNormGradient,
  unregisterBatchNormGradient,
} from '../../../../src/ml/kernels/batch-norm-grad.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { HeapKernels } from '../../../../src/ml/kernels/heap-kernels.ts';
import { relativeError } from './reference.ts';

/** Deterministic values: sin of a scaled index, shifted. */
function values(n: number, k: number, shift = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + 0.3) + shift);
}

/**
 * The gradients of a batch-normalized, non-linear loss with respect to x, mean, variance, scale
 * and offset, or, `training`, to x, scale and offset with the batch's own moments as Keras'
 * training mode uses them. (tfjs-core cannot differentiate a batch norm without a scale: its
 * tape saves the missing input.)
 */
function gradients(shape: number[], training: boolean): Float32Array[] {
  const c = shape.at(-1)!;
  const n = shape.reduce((p, d) => p * d, 1);
  return tf.tidy(() => {
    const x = tf.tensor(values(n, 0.37, 2), shape);
    const mean = tf.tensor1d(values(c, 1.1, 2));
    const variance = tf.tensor1d(values(c, 0.7, 1.5));
    const scale = tf.tensor1d(values(c, 0.9, 1));
    const offset = tf.tensor1d(values(c, 0.5));
    const loss = (y: tf.Tensor) => tf.sum(tf.mul(tf.sin(y), tf.tensor(values(n, 0.11), shape)));
    if (training) {
      return tf
        .grads((xt: tf.Tensor, st: tf.Tensor, ot: tf.Tensor) => {
          const m = tf.moments(xt, [...Array(shape.length - 1).keys()]);
          return loss(tf.batchNorm(xt, m.mean, m.variance, ot, st, 1e-3));
        })([x, scale, offset])
        .map((g) => g.dataSync() as Float32Array);
    }
    return tf
      .grads((xt: tf.Tensor, mt: tf.Tensor, vt: tf.Tensor, st: tf.Tensor, ot: tf.Tensor) =>
        loss(tf.batchNorm(xt, mt, vt, ot, st, 1e-3)),
      )([x, mean, variance, scale, offset])
      .map((g) => g.dataSync() as Float32Array);
  });
}

describe('one-pass FusedBatchNorm gradient on wasm', () => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
    await tf.setBackend('wasm');
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it.each([
    { shape: [8, 6, 5, 16], training: false },
    { shape: [300, 7], training: false }, // 300 rows: two float64 blocks, a lane tail
    { shape: [6, 5, 5, 12], training: true },
    { shape: [4, 3, 3, 8], training: true },
  ])(
    '$shape (training: $training) matches tfjs-core’s gradient and the cpu backend',
    async ({ shape, training }) => {
      const onePass = vi.spyOn(HeapKernels.prototype, 'batchNormGrad');
      const before = tf.memory().numTensors;
      const ours = gradients(shape, training);
      expect(tf.memory().numTensors).toBe(before);
      expect(onePass).toHaveBeenCalledTimes(1);
      vi.restoreAllMocks();
      unregisterBatchNormGradient();
      const core = gradients(shape, training);
      await tf.setBackend('cpu');
      const cpu = gradients(shape, training);
      await tf.setBackend('wasm');
      registerBatchNormGradient();
      if (!training) {
        expect([...ours[0]!]).toEqual([...core[0]!]); // dx: the same float32 products
      }
      ours.forEach((g, i) => {
        expect(g.length).toBe(cpu[i]!.length);
        expect(relativeError(g, core[i]!)).toBeLessThanOrEqual(1e-5);
        expect(relativeError(g, cpu[i]!)).toBeLessThanOrEqual(1e-5);
        expect(g.some((v) => v !== 0)).toBe(true);
      });
    },
  );

  it('lets tfjs-core’s differentiable gradient serve a second-order gradient', async () => {
    const second = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(2 * 3 * 3 * 8, 0.21, 1), [2, 3, 3, 8]);
        const scale = tf.tensor1d(values(8, 0.9, 1));
        const offset = tf.tensor1d(values(8, 0.5));
        const firstOrder = (a: tf.Tensor) =>
          tf.grad((b: tf.Tensor) => {
            const m = tf.moments(b, [0, 1, 2]);
            return tf.sum(tf.sin(tf.batchNorm(b, m.mean, m.variance, offset, scale, 1e-3)));
          })(a);
        return tf
          .grad((a: tf.Tensor) => tf.sum(tf.square(firstOrder(a))))(x)
          .dataSync();
      });
    // The inner gradient, recorded on the outer tape, runs tfjs-core's ops (the one-pass kernel
    // has no gradient); the outer backward pass may use the one-pass kernel.
    const ours = second();
    await tf.setBackend('cpu');
    const cpu = second();
    await tf.setBackend('wasm');
    expect(relativeError(ours as Float32Array, cpu as Float32Array)).toBeLessThanOrEqual(1e-5);
    expect(ours.some((v) => v !== 0)).toBe(true);
  });

  it('leaves three channels to tfjs-core’s gradient', () => {
    const onePass = vi.spyOn(HeapKernels.prototype, 'batchNormGrad');
    const grads = gradients([4, 5, 3], false);
    expect(onePass).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    expect(grads).toHaveLength(5);
  });
});
