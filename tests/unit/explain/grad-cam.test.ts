import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { gradCamPlusPlus } from '../../../src/explain/grad-cam-plus-plus.ts';
import { gradCam } from '../../../src/explain/grad-cam.ts';
import { argMax } from '../../../src/explain/heat-map.ts';
import { findTargetLayer, spatialLayers } from '../../../src/explain/target-layer.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { buildCornerModel, squareImage } from './tiny-models.ts';

let flat: tf.LayersModel;
let nested: tf.LayersModel;

beforeAll(async () => {
  await initBackend();
  flat = buildCornerModel();
  nested = buildCornerModel({ nested: true });
});
afterAll(() => {
  flat.dispose();
  nested.dispose();
});

const input = (data: Float32Array, size = 16): tf.Tensor4D => tf.tensor4d(data, [1, size, size, 1]);

describe('Grad-CAM', () => {
  it.each([
    ['Grad-CAM', gradCam],
    ['Grad-CAM++', gradCamPlusPlus],
  ] as const)(
    '%s peaks inside the bright corner square the class depends on',
    async (_, method) => {
      const x = input(squareImage({ x: 0, y: 0, side: 4 }));
      const r = await method(flat, x);
      x.dispose();
      expect(r.layer).toBe('features');
      expect(r.classIndex).toBe(1);
      expect([r.map.width, r.map.height]).toEqual([16, 16]);
      const peak = argMax(r.map);
      expect(peak.x).toBeLessThan(4);
      expect(peak.y).toBeLessThan(4);
      expect(peak.value).toBe(1);
      expect(r.map.note).toBeUndefined();
    },
  );

  it('uses the pre-softmax score, so a saturated softmax still gives a map', async () => {
    const confident = buildCornerModel({ gain: 200 });
    const x = input(squareImage());
    const r = await gradCam(confident, x);
    x.dispose();
    confident.dispose();
    expect(r.probabilities[1]).toBe(1); // float32 softmax saturated: its gradient is 0
    expect(r.scoreKind).toBe('pre-softmax');
    expect(r.map.note).toBeUndefined();
    expect(argMax(r.map).x).toBeLessThan(4);
  });

  it('explains a layer inside a nested model, in two stages, as the flat model', async () => {
    const x = input(squareImage({ x: 0, y: 0, side: 3 }));
    const a = await gradCam(flat, x);
    const b = await gradCam(nested, x);
    const c = await gradCamPlusPlus(nested, x, { layer: 'features' });
    x.dispose();
    expect(b.layer).toBe('base/features');
    expect(c.layer).toBe('base/features');
    expect(Array.from(b.map.data)).toEqual(Array.from(a.map.data));
    expect(argMax(c.map).x).toBeLessThan(3);
  });

  it('explains the class asked for, by index or by name', async () => {
    const x = input(squareImage());
    const byName = await gradCam(flat, x, {
      target: { kind: 'name', name: 'PLAIN' },
      classNames: ['plain', 'corner square'],
    });
    const byIndex = await gradCam(flat, x, { target: { kind: 'index', index: 0 } });
    x.dispose();
    expect(byName.classIndex).toBe(0);
    expect(byIndex.classIndex).toBe(0);
    // Class 0's score is constant: nothing raises it.
    expect(byIndex.map.note).toBe('empty');
  });

  it('gives an all-zero map with a note, not NaN, for a uniform image', async () => {
    const x = input(new Float32Array(256).fill(0.7));
    for (const method of [gradCam, gradCamPlusPlus]) {
      const r = await method(flat, x);
      expect(r.map.note).toBe('flat');
      expect(r.map.data.every((v) => v === 0)).toBe(true);
    }
    const black = input(new Float32Array(256));
    const r = await gradCam(flat, black);
    expect(r.map.data.every((v) => v === 0)).toBe(true);
    expect(r.map.data.some(Number.isNaN)).toBe(false);
    tf.dispose([x, black]);
  });

  it('leaves the number of tensors unchanged after 100 calls', async () => {
    const x = input(squareImage());
    await gradCam(nested, x); // first call: lazily created state, if any
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      await gradCam(flat, x);
      await gradCamPlusPlus(nested, x);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('rejects an unknown layer name, listing the valid ones', () => {
    let error: unknown;
    try {
      findTargetLayer(nested, 'conv9');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).id).toBe('argument.invalid');
    expect((error as UserError).message).toContain('valid layers: base/features');
    expect(String((error as UserError).params.usage)).toContain('base/features');
  });
});

describe('the target layer', () => {
  it('is the last feature layer by default, not a pooling layer after it', () => {
    const inp = tf.input({ shape: [12, 12, 1] });
    let h = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, name: 'c1' })
      .apply(inp) as tf.SymbolicTensor;
    h = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: 'c2' }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.maxPooling2d({ poolSize: 2, name: 'p2' }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
    const m = tf.model({ inputs: inp, outputs: out });
    expect(spatialLayers(m).map((l) => l.name)).toEqual(['c1', 'c2', 'p2']);
    expect(findTargetLayer(m).name).toBe('c2');
    expect(findTargetLayer(m, 'p2').shape).toEqual([4, 4, 2]);
    m.dispose();
  });

  it('refuses a model without spatial layers', () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [4] })] });
    expect(() => findTargetLayer(m)).toThrow(/no layer with a spatial output/);
    m.dispose();
  });
});
