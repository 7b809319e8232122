import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applyQuantization,
  bufferOf,
  quantizeValues,
  quantizeWeights,
  toFloat16Bits,
  weightBytes,
} from '../../../src/ml/quantize.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterEach(() => {
  tf.disposeVariables();
});

/** Decodes quantized bytes the way loading a model does. */
function decode(bytes: Uint8Array, spec: tf.io.WeightsManifestEntry): Float32Array {
  const t = tf.io.decodeWeights(bufferOf(bytes), [spec])[spec.name]!;
  const values = t.dataSync() as Float32Array;
  t.dispose();
  return values;
}

/** A small dense + conv model with a bias of zeros. */
function buildTiny(seed: number): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [6, 6, 2],
        filters: 3,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.flatten(),
      tf.layers.dense({
        units: 4,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 2 }),
      }),
    ],
  });
}

describe('quantizeValues uint8', () => {
  it('keeps every value within half a step and 0 exact (nudged range, as the converter)', () => {
    const values = Float32Array.from([-0.73, -0.2, 0, 0.013, 0.5, 1.1]);

    const { bytes, quantization } = quantizeValues(values, 'uint8');

    expect(quantization.dtype).toBe('uint8');
    const scale = quantization.scale!;
    expect(scale).toBe((Math.fround(1.1) - Math.fround(-0.73)) / 255);
    const back = decode(bytes, { name: 'w', shape: [6], dtype: 'float32', quantization });
    expect(back[2]).toBe(0);
    values.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(scale / 2 + 1e-7));
    expect(bytes.byteLength).toBe(values.length);
  });

  it('does not nudge a range that excludes 0, and stores a constant tensor as its min', () => {
    const positive = quantizeValues(Float32Array.from([2, 3, 4]), 'uint8').quantization;
    expect(positive.min).toBe(2);

    const constant = quantizeValues(new Float32Array(5).fill(0.25), 'uint8');
    expect(constant.quantization).toEqual({ dtype: 'uint8', scale: 1, min: 0.25 });
    expect(Array.from(constant.bytes)).toEqual([0, 0, 0, 0, 0]);
  });

  it('refuses NaN and infinite values', () => {
    expect(() => quantizeValues(Float32Array.from([1, NaN]), 'uint8')).toThrow(/finite/);
    expect(() => quantizeValues(Float32Array.from([Infinity]), 'float16')).toThrow(/finite/);
  });
});

describe('quantizeValues float16', () => {
  it('rounds to the nearest half (ties to even), clamps overflow, keeps subnormals', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [1e6, 0x7bff],
      [-1e6, 0xfbff],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: to even
      [0.75 * 2 ** -24, 0x0001],
      [1 + 2 ** -11, 0x3c00], // tie: to even
      [1 + 3 * 2 ** -11, 0x3c02], // tie: to even (up)
      [2 ** -14, 0x0400], // smallest normal
    ];
    for (const [v, bits] of cases) expect(toFloat16Bits(v), String(v)).toBe(bits);
  });

  it('decodes through tf.io within a relative 2^-11, at 2 bytes per value', () => {
    const values = Float32Array.from([0.1, -3.14159, 1234.5, 6e-5, -0.000123]);

    const { bytes, quantization } = quantizeValues(values, 'float16');

    expect(quantization).toEqual({ dtype: 'float16' });
    expect(bytes.byteLength).toBe(2 * values.length);
    const back = decode(bytes, { name: 'w', shape: [5], dtype: 'float32', quantization });
    values.forEach((v, i) =>
      expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-9),
    );
  });
});

describe('quantizeWeights', () => {
  it('quantizes float32 entries and copies int32 ones unchanged', () => {
    const floats = Float32Array.from([-1, 0, 0.5, 1]);
    const ints = Int32Array.from([7, -3]);
    const data = new Uint8Array(floats.byteLength + ints.byteLength);
    data.set(new Uint8Array(floats.buffer), 0);
    data.set(new Uint8Array(ints.buffer), floats.byteLength);
    const specs: tf.io.WeightsManifestEntry[] = [
      { name: 'k', shape: [2, 2], dtype: 'float32' },
      { name: 'step', shape: [2], dtype: 'int32' },
    ];

    const q = quantizeWeights(specs, data.buffer, 'uint8');

    expect(q.specs[0]).toMatchObject({ name: 'k', shape: [2, 2], dtype: 'float32' });
    expect(q.specs[0]!.quantization?.dtype).toBe('uint8');
    expect(q.specs[1]).toEqual(specs[1]);
    expect(q.data.byteLength).toBe(4 + 8);
    const decoded = tf.io.decodeWeights(bufferOf(q.data), q.specs);
    expect(Array.from(decoded.step!.dataSync())).toEqual([7, -3]);
    expect(decoded.step!.dtype).toBe('int32');
    tf.dispose(decoded);
  });

  it('keeps 1-D float32 weights (biases, batch norm statistics) as they are', () => {
    const bias = Float32Array.from([1e-4, 3, -2]);
    const q = quantizeWeights(
      [{ name: 'b', shape: [3], dtype: 'float32' }],
      bias.slice().buffer,
      'uint8',
    );
    expect(q.specs[0]!.quantization).toBeUndefined();
    expect(new Float32Array(q.data.slice().buffer)).toEqual(bias);
  });

  it('refuses weights already quantized, and data shorter than the manifest', () => {
    const spec: tf.io.WeightsManifestEntry = {
      name: 'k',
      shape: [2],
      dtype: 'float32',
      quantization: { dtype: 'float16' },
    };
    expect(() => quantizeWeights([spec], new ArrayBuffer(4), 'uint8')).toThrow(/already/);
    expect(() =>
      quantizeWeights(
        [{ name: 'k', shape: [2, 2], dtype: 'float32' }],
        new ArrayBuffer(8),
        'uint8',
      ),
    ).toThrow(/k needs bytes 0\.\.16/);
  });
});

describe('applyQuantization', () => {
  it.each([
    ['uint8', 4],
    ['float16', 2],
  ] as const)(
    '%s: moves the weights a little, reports 1/%i of the bytes, and leaks no tensors',
    (dtype, ratio) => {
      const model = buildTiny(3);
      const before = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      const input = tf.randomUniform([4, 6, 6, 2], 0, 1, 'float32', 5);
      const p0 = (model.predict(input) as tf.Tensor).dataSync().slice();
      const tensors = tf.memory().numTensors;

      const sizes = applyQuantization(model, dtype);

      expect(tf.memory().numTensors).toBe(tensors);
      expect(sizes.float32Bytes).toBe(weightBytes(model));
      expect(sizes.float32Bytes).toBe(4 * model.countParams());
      // Kernels shrink by the ratio; 1-D weights (biases, batch norm) stay float32.
      const expected = model.weights.reduce((sum, w) => {
        const n = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
        return sum + (w.shape.length >= 2 ? (4 * n) / ratio : 4 * n);
      }, 0);
      expect(sizes.bytes).toBe(expected);
      const after = model.getWeights().map((w) => w.dataSync() as Float32Array);
      model.weights.forEach((w, i) => {
        if (w.shape.length < 2) expect(after[i]).toEqual(before[i]);
      });
      after.forEach((w, i) => {
        const range = Math.max(...before[i]!) - Math.min(...before[i]!);
        w.forEach((v, j) => expect(Math.abs(v - before[i]![j]!)).toBeLessThanOrEqual(range / 255));
      });
      const p1 = tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync());
      p1.forEach((p, i) => expect(Math.abs(p - p0[i]!)).toBeLessThan(0.02));
      tf.dispose(input);
    },
  );
});

describe('applyQuantization twice', () => {
  it('lands on the same values (up to float32 rounding), so re-saving a quantized model is safe', () => {
    for (const dtype of ['uint8', 'float16'] as const) {
      const model = buildTiny(11);
      applyQuantization(model, dtype);
      const once = model.getWeights().map((w) => w.dataSync().slice());

      applyQuantization(model, dtype);

      model.getWeights().forEach((w, i) =>
        w.dataSync().forEach((v, j) => {
          const first = once[i]![j]!;
          expect(Math.abs(v - first)).toBeLessThanOrEqual(Math.abs(first) * 2 ** -23 + 1e-12);
        }),
      );
    }
  });
});
