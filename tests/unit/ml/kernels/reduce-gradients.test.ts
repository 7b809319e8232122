import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerReduceGradients,
  unregisterReduceGradients,
} from '../../../../src/ml/kernels/reduce-gradients.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';

/** Values of `tf.grads` of `sum(w ⊙ f(x))` for a fixed, non-uniform weighting `w` of f's output. */
function gradient(f: (x: tf.Tensor) => tf.Tensor, shape: number[]): Float32Array {
  return tf.tidy(() => {
    const x = tf
      .range(
        0,
        shape.reduce((p, d) => p * d, 1),
      )
      .reshape(shape)
      .div(7)
      .sin();
    const [dx] = tf.grads((xt: tf.Tensor) => {
      const y = f(xt);
      const w = tf
        .range(1, y.size + 1)
        .reshape(y.shape)
        .div(3);
      return tf.sum(tf.mul(y, w));
    })([x]);
    return dx!.dataSync() as Float32Array;
  });
}

/** `distinct`: how many different values the gradient holds (one per output element of f). */
const CASES: { name: string; shape: number[]; distinct: number; f: (x: tf.Tensor) => tf.Tensor }[] =
  [
    {
      name: 'mean over batch norm axes',
      shape: [4, 5, 3, 6],
      distinct: 6,
      f: (x) => tf.mean(x, [0, 1, 2]),
    },
    {
      name: 'mean over [1, 2], kept',
      shape: [3, 4, 4, 5],
      distinct: 15,
      f: (x) => tf.mean(x, [1, 2], true),
    },
    { name: 'mean over everything', shape: [3, 7], distinct: 1, f: (x) => tf.mean(x) },
    { name: 'mean over axis -1', shape: [6, 9], distinct: 6, f: (x) => tf.mean(x, -1) },
    { name: 'sum over axis 1', shape: [5, 8, 3], distinct: 15, f: (x) => tf.sum(x, 1) },
    {
      name: 'sum over [0, 2], kept',
      shape: [5, 8, 3],
      distinct: 8,
      f: (x) => tf.sum(x, [0, 2], true),
    },
    { name: 'sum over everything', shape: [10], distinct: 1, f: (x) => tf.sum(x) },
  ];

describe.each(['cpu', 'wasm'])('Sum and Mean gradients on %s', (backend) => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    registerConvGradientKernels();
    await tf.setBackend(backend);
  });

  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it.each(CASES)('$name: bit for bit tfjs-core’s, tensors flat', ({ shape, distinct, f }) => {
    const before = tf.memory().numTensors;
    const ours = gradient(f, shape);
    expect(tf.memory().numTensors).toBe(before);
    unregisterReduceGradients();
    const reference = gradient(f, shape);
    registerReduceGradients();
    expect(ours.length).toBe(shape.reduce((p, d) => p * d, 1));
    expect([...ours]).toEqual([...reference]);
    expect(new Set(ours).size).toBe(distinct);
  });

  it.each([
    ['mean', (x: tf.Tensor) => tf.mean(x, 1)],
    ['sum', (x: tf.Tensor) => tf.sum(x, [1, 2], true)],
  ] as const)('gives the %s over an empty axis a gradient of the input’s shape', (_, f) => {
    const [dx] = tf.grads((x: tf.Tensor) => tf.sum(f(x)))([tf.zeros([2, 0, 3])]);
    expect(dx!.shape).toEqual([2, 0, 3]);
    dx!.dispose();
  });

  it('replaces tfjs-core’s gradient and puts it back', () => {
    const ours = tf.getGradient(tf.Mean);
    unregisterReduceGradients();
    const core = tf.getGradient(tf.Mean);
    registerReduceGradients();
    registerReduceGradients(); // idempotent
    expect(core).not.toBe(ours);
    expect(tf.getGradient(tf.Mean)).toBe(ours);
  });
});
