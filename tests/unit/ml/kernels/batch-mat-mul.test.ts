import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';

function randomValues(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

interface Product {
  readonly a: number[];
  readonly b: number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

const PRODUCTS: Product[] = [];
for (const transposeA of [false, true]) {
  for (const transposeB of [false, true]) {
    PRODUCTS.push(
      { a: transposeA ? [7, 5] : [5, 7], b: transposeB ? [3, 7] : [7, 3], transposeA, transposeB },
      {
        a: transposeA ? [2, 7, 5] : [2, 5, 7],
        b: transposeB ? [2, 3, 7] : [2, 7, 3],
        transposeA,
        transposeB,
      },
      // broadcast batch: one b for every a
      {
        a: transposeA ? [4, 6, 2] : [4, 2, 6],
        b: transposeB ? [1, 3, 6] : [1, 6, 3],
        transposeA,
        transposeB,
      },
    );
  }
}

function product(p: Product): Float32Array {
  return tf.tidy(() => {
    const a = tf.tensor(
      randomValues(
        p.a.reduce((x, y) => x * y),
        1,
      ),
      p.a,
    );
    const b = tf.tensor(
      randomValues(
        p.b.reduce((x, y) => x * y),
        2,
      ),
      p.b,
    );
    return tf.matMul(a, b, p.transposeA, p.transposeB).dataSync() as Float32Array;
  });
}

beforeAll(async () => {
  tf.env().set('IS_TEST', true); // the engine then checks each kernel for leaked buffers
  registerConvGradientKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

describe('wasm BatchMatMul wrapper', () => {
  it.each(
    PRODUCTS.map(
      (p) =>
        [
          `a[${p.a.join(',')}] b[${p.b.join(',')}] tA=${p.transposeA} tB=${p.transposeB}`,
          p,
        ] as const,
    ),
  )('computes the same product as the built-in kernel: %s', (_name, p) => {
    const before = tf.memory().numTensors;

    const wrapped = product(p);
    unregisterConvGradientKernels();
    const builtIn = product(p);
    registerConvGradientKernels();

    const scale = builtIn.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
    const diff = wrapped.reduce((m, v, i) => Math.max(m, Math.abs(v - (builtIn[i] ?? NaN))), 0);
    expect(diff / scale).toBeLessThanOrEqual(1e-6);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives a dense layer the same gradients as the cpu backend', async () => {
    const x = randomValues(6 * 10, 3);
    const w = randomValues(10 * 4, 4);
    const grads = () =>
      tf.tidy(() =>
        tf
          .grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(tf.matMul(a, b))))([
            tf.tensor2d(x, [6, 10]),
            tf.tensor2d(w, [10, 4]),
          ])
          .map((g) => g.dataSync() as Float32Array),
      );

    const actual = grads();
    await tf.setBackend('cpu');
    const expected = grads();
    await tf.setBackend('wasm');

    actual.forEach((g, i) => {
      const ref = expected[i]!;
      g.forEach((v, j) => expect(v).toBeCloseTo(ref[j]!, 5));
    });
  });
});
