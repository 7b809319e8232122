import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argMax } from '../../../src/explain/heat-map.ts';
import { computeSaliency } from '../../../src/explain/saliency.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { buildCornerModel, squareImage } from './tiny-models.ts';

let model: tf.LayersModel;

beforeAll(async () => {
  await initBackend();
  model = buildCornerModel({ channels: 3 });
});
afterAll(() => model.dispose());

describe('saliency', () => {
  it('is bright only where the class score depends on the pixels', async () => {
    // A second bright square far from the corner: the score ignores it, so must the map.
    const data = squareImage({ channels: 3 });
    const far = squareImage({ channels: 3, x: 10, y: 10 });
    const both = data.map((v, i) => Math.max(v, far[i] ?? 0));
    const x = tf.tensor4d(both, [1, 16, 16, 3]);
    const r = await computeSaliency(model, x);
    x.dispose();
    expect([r.map.width, r.map.height]).toEqual([16, 16]);
    expect(r.classIndex).toBe(1);
    for (let y = 0; y < 16; y++) {
      for (let xx = 0; xx < 16; xx++) {
        const v = r.map.data[y * 16 + xx] ?? 0;
        if (y >= 4 || xx >= 4) expect(v).toBe(0);
      }
    }
    expect(argMax(r.map).value).toBe(1);
  });

  it('with SmoothGrad, is seeded and keeps the number of tensors', async () => {
    const x = tf.tensor4d(squareImage({ channels: 3 }), [1, 16, 16, 3]);
    const options = { smoothGrad: { samples: 10, noise: 0.15, seed: 3 } };
    const a = await computeSaliency(model, x, options);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) await computeSaliency(model, x, i % 10 === 0 ? options : {});
    expect(tf.memory().numTensors).toBe(before);
    const b = await computeSaliency(model, x, options);
    x.dispose();
    expect(Array.from(b.map.data)).toEqual(Array.from(a.map.data));
    expect(argMax(a.map).x).toBeLessThan(4);
  });

  it('gives a zero map with a note, not NaN, when the gradient is zero', async () => {
    const x = tf.tensor4d(new Float32Array(16 * 16 * 3).fill(0.2), [1, 16, 16, 3]);
    const r = await computeSaliency(model, x);
    x.dispose();
    expect(r.map.note).toBe('empty');
    expect(r.map.data.every((v) => v === 0)).toBe(true);
  });
});
