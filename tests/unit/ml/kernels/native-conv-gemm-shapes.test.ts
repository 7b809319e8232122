/**
 * Review: the native im2col convolutions (convGemm and its gradients) on the cases the kernel
 * tests left out: several chunks of output pixels (96 forward and input gradient, 256 filter
 * gradient) with a ragged last one, 'valid' and explicit padding, batch 1, a dense 5x5 conv,
 * against the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { heapKernels } from '../../../../src/ml/kernels/heap-kernels.ts';
import { isWasmBackend } from '../../../../src/ml/kernels/wasm-heap.ts';
import { kernelEngine } from '../../../../src/ml/kernels/native-kernels.ts';
import { randomValues, relativeError } from './reference.ts';

const built = kernelEngine().engine === 'native';
const TOLERANCE = 2e-5;

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
interface Case {
  readonly name: string;
  readonly x: readonly [number, number, number, number];
  readonly f: readonly [number, number, number, number];
  readonly s: number;
  readonly pad: Pad;
}

const cases: Case[] = [
  {
    name: 'strided 3x3 same, 544 pixels',
    x: [2, 33, 31, 16],
    f: [3, 3, 16, 32],
    s: 2,
    pad: 'same',
  },
  { name: 'strided 3x3 valid, batch 1', x: [1, 41, 37, 8], f: [3, 3, 8, 16], s: 2, pad: 'valid' },
  {
    name: 'strided 1x1 valid, 3 chunks',
    x: [3, 30, 26, 32],
    f: [1, 1, 32, 64],
    s: 2,
    pad: 'valid',
  },
  {
    name: 'stride 4 11x11 valid (AlexNet conv1)',
    x: [1, 67, 67, 3],
    f: [11, 11, 3, 16],
    s: 4,
    pad: 'valid',
  },
  { name: 'dense 5x5 same, 48 into 64', x: [1, 13, 13, 48], f: [5, 5, 48, 64], s: 1, pad: 'same' },
  {
    name: 'strided 3x3 explicit padding',
    x: [2, 19, 21, 16],
    f: [3, 3, 16, 32],
    s: 2,
    pad: [
      [0, 0],
      [1, 2],
      [2, 0],
      [0, 0],
    ],
  },
];

function results(c: Case): Float32Array[] {
  return tf.tidy(() => {
    const n = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
    const x = tf.tensor4d(randomValues(n(c.x), 31), [...c.x]);
    const w = tf.tensor4d(randomValues(n(c.f), 32), [...c.f]);
    const bias = tf.tensor1d(randomValues(c.f[3], 33));
    const conv = (a: tf.Tensor, b: tf.Tensor) =>
      tf.fused.conv2d({
        x: a as tf.Tensor4D,
        filter: b as tf.Tensor4D,
        strides: c.s,
        pad: c.pad,
        bias,
        activation: 'relu',
      });
    return [
      conv(x, w),
      ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([x, w]),
    ].map((t) => t.dataSync() as Float32Array);
  });
}

/** Calls of the three native im2col kernels, counted by wrapping the heap kernels' methods. */
const calls = new Map<string, number>();
function countCalls(): void {
  const backend = tf.backend();
  if (!isWasmBackend(backend)) throw new Error('wasm backend expected');
  const kernels = heapKernels(backend) as unknown as Record<string, unknown> | undefined;
  for (const name of ['convGemm', 'convGemmFilterGrad', 'convGemmInputGrad']) {
    const fn = kernels?.[name];
    if (typeof fn !== 'function' || calls.has(name)) continue;
    calls.set(name, 0);
    kernels![name] = function (this: unknown, ...a: unknown[]) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return (fn as (...b: unknown[]) => unknown).apply(this, a);
    };
  }
}

describe.skipIf(!built)('native im2col convolutions beyond one chunk', () => {
  it.each(cases)('$name: output and both gradients as on cpu', async (c) => {
    countCalls();
    for (const k of calls.keys()) calls.set(k, 0);
    const before = tf.memory().numTensors;
    const got = results(c);
    expect(tf.memory().numTensors).toBe(before);
    // The forward pass (twice: the value and under the tape) and both gradients ran natively.
    expect(Object.fromEntries(calls)).toEqual({
      convGemm: 2,
      convGemmFilterGrad: 1,
      convGemmInputGrad: 1,
    });
    await tf.setBackend('cpu');
    const want = results(c);
    await tf.setBackend('wasm');
    got.forEach((g, i) => {
      expect(g.length).toBe(want[i]!.length);
      expect(relativeError(g, want[i]!)).toBeLessThan(TOLERANCE);
    });
  });
});
