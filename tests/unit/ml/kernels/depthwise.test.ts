import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildMobileNetLike } from '../../../../src/ml/architectures/mobilenet-fashion.ts';
import { createAdam } from '../../../../src/ml/fused-adam.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { HeapKernels } from '../../../../src/ml/kernels/heap-kernels.ts';
import { onBothBackends, randomValues, relativeError } from './reference.ts';

/** max|c − ref| / max|ref| against the cpu backend, as for the project's other kernels. */
const TOLERANCE = 1e-5;

const count = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

describe('in-place depthwise convolution on wasm', () => {
  it.each([
    { x: [2, 28, 28, 16], f: 3, stride: 1, pad: 'same' }, // MobileNet-fashion's first block
    { x: [2, 28, 28, 32], f: 3, stride: 2, pad: 'same' }, // its first strided one
    { x: [3, 7, 7, 128], f: 3, stride: 1, pad: 'same' },
    { x: [2, 9, 8, 20], f: 3, stride: 2, pad: 'valid' }, // 16 + 4 channels, odd sizes
    { x: [1, 10, 11, 4], f: 5, stride: 3, pad: 'same' }, // ragged strides past the borders
    { x: [2, 6, 7, 8], f: 2, stride: 1, pad: 2 }, // even filter, explicit padding
    { x: [1, 5, 6, 12], f: 4, stride: 2, pad: 'same' }, // even filter, asymmetric 'same' padding
  ] as const)(
    'gives x $x, $f×$f filter, stride $stride, pad $pad the cpu backend’s output and both gradients',
    async ({ x, f, stride, pad }) => {
      const spies = [
        vi.spyOn(HeapKernels.prototype, 'depthwiseConv2d'),
        vi.spyOn(HeapKernels.prototype, 'depthwiseConv2dInputGrad'),
        vi.spyOn(HeapKernels.prototype, 'depthwiseConv2dFilterGrad'),
      ];
      const shape = [f, f, x[3], 1] as const;
      const [actual, expected] = await onBothBackends(() => {
        const xt = tf.tensor4d(randomValues(count(x), 61), [...x]);
        const ft = tf.tensor4d(randomValues(count(shape), 62), [...shape]);
        const conv = (a: tf.Tensor, b: tf.Tensor) =>
          tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
        return [
          conv(xt, ft),
          ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([xt, ft]),
        ];
      });
      for (const spy of spies) expect(spy).toHaveBeenCalled();
      vi.restoreAllMocks();
      actual.forEach((g, i) =>
        expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE),
      );
    },
  );

  it('adds the bias and applies ReLU of a fused depthwise convolution as the cpu backend', async () => {
    const spy = vi.spyOn(HeapKernels.prototype, 'depthwiseConv2d');
    const [[actual], [expected]] = await onBothBackends(() => [
      tf.fused.depthwiseConv2d({
        x: tf.tensor4d(randomValues(2 * 8 * 8 * 24, 63), [2, 8, 8, 24]),
        filter: tf.tensor4d(randomValues(3 * 3 * 24, 64), [3, 3, 24, 1]),
        strides: 1,
        pad: 'same',
        bias: tf.tensor1d(randomValues(24, 65)),
        activation: 'relu',
      }),
    ]);
    expect(spy).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
    expect(actual!.some((v) => v === 0)).toBe(true);
    expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('leaves channel multipliers, dilations and channels not a multiple of 4 to the other kernels, as correct', async () => {
    // (The composite gradients may still run a multiplier-1 forward convolution in place.)
    const spies = [
      vi.spyOn(HeapKernels.prototype, 'depthwiseConv2dInputGrad'),
      vi.spyOn(HeapKernels.prototype, 'depthwiseConv2dFilterGrad'),
    ];
    const cases = [
      { x: [2, 8, 8, 4], f: [3, 3, 4, 2], dilation: 1 }, // multiplier 2
      { x: [2, 9, 9, 8], f: [3, 3, 8, 1], dilation: 2 },
      { x: [2, 8, 8, 6], f: [3, 3, 6, 1], dilation: 1 },
    ] as const;
    for (const [n, { x, f, dilation }] of cases.entries()) {
      const [actual, expected] = await onBothBackends(() => {
        const xt = tf.tensor4d(randomValues(count(x), 70 + n), [...x]);
        const ft = tf.tensor4d(randomValues(count(f), 80 + n), [...f]);
        const conv = (a: tf.Tensor, b: tf.Tensor) =>
          tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', dilation);
        // tfjs-core has no gradient for dilated depthwise convolutions.
        if (dilation > 1) return [conv(xt, ft)];
        return [
          conv(xt, ft),
          ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([xt, ft]),
        ];
      });
      actual.forEach((g, i) =>
        expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE),
      );
    }
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    vi.restoreAllMocks();
  });

  it('refuses a dy whose shape does not fit the convolution instead of reading past it', () => {
    const dy = tf.ones([1, 4, 4, 8]);
    const filter = tf.ones([3, 3, 8, 1]);
    const x = tf.ones([1, 8, 8, 8]);
    expect(() =>
      tf
        .engine()
        .runKernel(
          tf.DepthwiseConv2dNativeBackpropInput,
          { dy, filter },
          { inputShape: [1, 8, 8, 8], strides: 1, pad: 'same', dilations: 1 },
        ),
    ).toThrow(/dy/);
    expect(() =>
      tf
        .engine()
        .runKernel(
          tf.DepthwiseConv2dNativeBackpropFilter,
          { x, dy },
          { filterShape: [3, 3, 8, 1], strides: 1, pad: 'same', dilations: 1 },
        ),
    ).toThrow(/dy/);
    tf.dispose([dy, filter, x]);
  });
});

describe('ClipByValue’s one-pass gradient on wasm', () => {
  it('is bit for bit tfjs-core’s, at the bounds, outside them and on NaN', async () => {
    const values = Float32Array.from([...randomValues(1021, 90)].map((v) => v * 8 - 1));
    values.set([0, 6, -0, Math.fround(6.0000005), NaN, -1e-30, Infinity, -Infinity], 0);
    const spy = vi.spyOn(HeapKernels.prototype, 'clipGrad');
    const [[wasm], [cpu]] = await onBothBackends(() => {
      const x = tf.tensor1d(values);
      const dy = tf.tensor1d(randomValues(values.length, 91));
      return [tf.grad((a: tf.Tensor) => tf.mul(tf.clipByValue(a, 0, 6), dy))(x)];
    });
    expect(spy).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
    expect(Array.from(wasm!)).toEqual(Array.from(cpu!));
    expect(wasm!.slice(0, 8)).toEqual(
      Float32Array.from([wasm![0]!, wasm![1]!, wasm![2]!, 0, 0, 0, 0, 0]),
    );
    expect(wasm![0]).not.toBe(0);
  });
});

describe('Relu’s one-pass gradient on wasm', () => {
  it('is bit for bit tfjs-core’s, at zero, on NaN and on infinite gradients', async () => {
    const values = Float32Array.from(randomValues(1023, 92));
    values.set([0, -0, NaN, 1e-30, -1e-30, Infinity, -Infinity, 2, -2], 0);
    const grads = Float32Array.from(randomValues(values.length, 93));
    grads.set([1, -1, 1, -1, 1, 1, 1, Infinity, Infinity], 0);
    const spy = vi.spyOn(HeapKernels.prototype, 'reluGrad');
    const [[wasm], [cpu]] = await onBothBackends(() => {
      const x = tf.tensor1d(values);
      const dy = tf.tensor1d(grads);
      return [tf.grad((a: tf.Tensor) => tf.mul(tf.relu(a), dy))(x)];
    });
    expect(spy).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
    // Signed zeros and NaN compared as bits (toEqual on numbers would take −0 for +0).
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    expect(bits(wasm!)).toEqual(bits(cpu!));
    // dy·0 keeps dy's sign; step(NaN) is NaN; Infinity·0 is NaN; x > 0 passes dy.
    expect(Object.is(wasm![0], 0)).toBe(true);
    expect(Object.is(wasm![1], -0)).toBe(true);
    expect(wasm![2]).toBeNaN();
    expect(wasm![3]).toBe(Math.fround(-1));
    expect(wasm![7]).toBe(Infinity);
    expect(wasm![8]).toBeNaN();
  });
});

describe('MobileNet-fashion training on wasm', () => {
  it('follows the cpu backend’s loss over three Adam steps, without leaking tensors', async () => {
    const batch = 4;
    const side = 12;
    const xs = randomValues(batch * side * side, 95).map((v) => (v + 1) / 2);
    const labels = Array.from({ length: batch }, (_, i) => (i * 7) % 10);
    const losses = async (): Promise<number[]> => {
      // MobileNet-fashion's layers at a size the cpu backend trains in a second.
      const model = buildMobileNetLike({
        seed: 3,
        inputShape: [side, side, 1],
        stemFilters: 8,
        blocks: [
          { filters: 16, strides: 1 },
          { filters: 32, strides: 2 },
        ],
      });
      model.compile({ optimizer: createAdam(1e-3), loss: 'categoricalCrossentropy' });
      const x = tf.tensor4d(xs, [batch, side, side, 1]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      const out: number[] = [];
      const before = tf.memory().numTensors;
      for (let s = 0; s < 3; s++) out.push((await model.trainOnBatch(x, y)) as number);
      const grown = tf.memory().numTensors - before;
      tf.dispose([x, y]);
      model.dispose();
      // Adam's moments are created on the first step: 2 per trainable weight, nothing else.
      expect(grown).toBe(2 * model.trainableWeights.length);
      return out;
    };
    const spy = vi.spyOn(HeapKernels.prototype, 'depthwiseConv2dFilterGrad');
    const wasm = await losses();
    expect(spy).toHaveBeenCalled();
    vi.restoreAllMocks();
    await tf.setBackend('cpu');
    const cpu = await losses();
    await tf.setBackend('wasm');
    wasm.forEach((l, i) => expect(Math.abs(l - cpu[i]!)).toBeLessThan(1e-4));
  });
});
