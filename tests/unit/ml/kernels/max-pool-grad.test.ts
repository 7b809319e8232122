import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  maxPoolGrad,
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';

type Pad = 'same' | 'valid';
type Shape4 = [number, number, number, number];

interface PoolCase {
  readonly size: readonly [number, number];
  readonly filter: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly pad: Pad;
}

/**
 * Kinds of input: continuous values in [-1, 1), only negative or only positive ones (which take
 * different paths on wasm), or many exact ties.
 */
type Values = 'mixed' | 'negative' | 'positive' | 'ties';

function randomValues(length: number, seed: number, kind: Values): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const u = state / 2 ** 32;
    out[i] =
      kind === 'ties'
        ? Math.floor(u * 3) - 1
        : kind === 'negative'
          ? -0.1 - u
          : kind === 'positive'
            ? 0.1 + u
            : u * 2 - 1;
  }
  return out;
}

const CASES: PoolCase[] = [];
for (const [filter, strides] of [
  [
    [2, 2],
    [2, 2],
  ],
  [
    [3, 3],
    [3, 3],
  ],
  [
    [2, 3],
    [2, 3],
  ],
  [
    [3, 3],
    [2, 2],
  ],
  [
    [2, 2],
    [1, 1],
  ],
  [
    [3, 2],
    [1, 2],
  ],
] as const) {
  for (const pad of ['valid', 'same'] as const) {
    for (const size of [
      [8, 8],
      [7, 9],
    ] as const) {
      CASES.push({ size, filter, strides, pad });
    }
  }
}

function label(c: PoolCase): string {
  return `${c.filter.join('x')}/${c.strides.join(',')} ${c.pad} on ${c.size.join('x')}`;
}

/** Gradient of `Σ maxPool(x) · u` with respect to x on the active backend, via autodiff. */
function autodiffGrad(c: PoolCase, x: Float32Array, shape: Shape4, seed: number): Float32Array {
  return tf.tidy(() => {
    const input = tf.tensor4d(x, shape);
    const pooled = tf.maxPool(
      input,
      [c.filter[0], c.filter[1]],
      [c.strides[0], c.strides[1]],
      c.pad,
    );
    const u = tf.tensor(randomValues(pooled.size, seed, 'mixed'), pooled.shape);
    return tf
      .grad((a: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.maxPool(
              a as tf.Tensor4D,
              [c.filter[0], c.filter[1]],
              [c.strides[0], c.strides[1]],
              c.pad,
            ),
            u,
          ),
        ),
      )(input)
      .dataSync() as Float32Array;
  });
}

async function cpuReference(
  c: PoolCase,
  x: Float32Array,
  shape: Shape4,
  seed: number,
): Promise<Float32Array> {
  unregisterConvGradientKernels();
  try {
    await tf.setBackend('cpu');
    return autodiffGrad(c, x, shape, seed);
  } finally {
    registerConvGradientKernels();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? NaN))), 0);
}

beforeAll(() => {
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

describe('maxPoolGrad', () => {
  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'routes each window gradient to its first maximum, as cpu does: %s',
    async (_name, c, i) => {
      for (const kind of ['mixed', 'negative', 'ties'] as const) {
        const shape: Shape4 = [2, c.size[0], c.size[1], 3];
        const x = randomValues(
          shape.reduce((a, b) => a * b),
          100 + i,
          kind,
        );
        const expected = await cpuReference(c, x, shape, i);

        for (const backend of ['wasm', 'cpu']) {
          await tf.setBackend(backend);
          const before = tf.memory().numTensors;
          const actual = tf.tidy(() => {
            const input = tf.tensor4d(x, shape);
            const filter: [number, number] = [c.filter[0], c.filter[1]];
            const strides: [number, number] = [c.strides[0], c.strides[1]];
            const pooled = tf.maxPool(input, filter, strides, c.pad);
            const u = tf.tensor4d(randomValues(pooled.size, i, 'mixed'), pooled.shape);
            return maxPoolGrad(u, input, pooled, filter, strides, c.pad).dataSync() as Float32Array;
          });

          expect(maxAbsDiff(actual, expected), `${backend} ${kind}`).toBeLessThanOrEqual(1e-6);
          expect(tf.memory().numTensors, `${backend} ${kind} leaked tensors`).toBe(before);
        }
      }
    },
  );

  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'gives wasm training the cpu gradient, also for windows whose maximum is negative: %s',
    async (_name, c, i) => {
      for (const kind of ['mixed', 'negative', 'positive'] as const) {
        const shape: Shape4 = [2, c.size[0], c.size[1], 3];
        const x = randomValues(
          shape.reduce((a, b) => a * b),
          200 + i,
          kind,
        );
        const expected = await cpuReference(c, x, shape, i);

        await tf.setBackend('wasm');
        const before = tf.memory().numTensors;
        const actual = autodiffGrad(c, x, shape, i);

        expect(maxAbsDiff(actual, expected), kind).toBeLessThanOrEqual(1e-6);
        expect(tf.memory().numTensors).toBe(before);
      }
    },
  );

  it('fixes tfjs-backend-wasm 4.22, which drops gradients of windows with a maximum ≤ 0', async () => {
    const c: PoolCase = { size: [2, 4], filter: [2, 2], strides: [2, 2], pad: 'valid' };
    const x = Float32Array.from([-1, -2, -3, -4, 0.5, -1, -7, -2]);
    const shape: Shape4 = [1, 2, 4, 1];
    await tf.setBackend('wasm');

    const fixed = Array.from(autodiffGrad(c, x, shape, 1)).map((v) => v !== 0);
    unregisterConvGradientKernels();
    const builtIn = Array.from(autodiffGrad(c, x, shape, 1)).map((v) => v !== 0);
    registerConvGradientKernels();

    expect(fixed).toEqual([false, false, false, false, true, false, false, true]);
    expect(builtIn).toEqual([false, false, false, false, true, false, false, false]);
  });
});
