import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { UserError } from '../../../src/errors.ts';
import { explainImage } from '../../../src/explain/explain-image.ts';
import { gradCamPlusPlus } from '../../../src/explain/grad-cam-plus-plus.ts';
import { gradCam } from '../../../src/explain/grad-cam.ts';
import { argMax } from '../../../src/explain/heat-map.ts';
import { findTargetLayer, spatialLayers } from '../../../src/explain/target-layer.ts';
import { buildResNet18 } from '../../../src/ml/architectures/resnet18.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { loadModel } from '../../../src/ml/model-io.ts';
import { readModelMeta } from '../../../src/ml/model-meta.ts';
import { SHIPPED_VERSION, type LoadedModel } from '../../../src/ml/registry.ts';
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

describe('the default target layer of residual networks', () => {
  /** conv > [branch: a > b] + shortcut > add > relu 'out' > conv 'branchy' on one side only. */
  function residual(): tf.LayersModel {
    const inp = tf.input({ shape: [8, 8, 2] });
    const stem = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'stem' })
      .apply(inp) as tf.SymbolicTensor;
    let y = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'a' })
      .apply(stem) as tf.SymbolicTensor;
    y = tf.layers.reLU({ name: 'a_relu' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'b' })
      .apply(y) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: 'add' }).apply([y, stem]) as tf.SymbolicTensor;
    const out = tf.layers.reLU({ name: 'out' }).apply(sum) as tf.SymbolicTensor;
    // A second block whose 'inner' layer is the last spatial one but inside the branch.
    const inner = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', name: 'inner' })
      .apply(out) as tf.SymbolicTensor;
    const down = tf.layers.globalAveragePooling2d({ name: 'gap1' }).apply(inner);
    const skip = tf.layers.globalAveragePooling2d({ name: 'gap2' }).apply(out);
    const joined = tf.layers
      .add({ name: 'join' })
      .apply([down as tf.SymbolicTensor, skip as tf.SymbolicTensor]) as tf.SymbolicTensor;
    const scores = tf.layers.dense({ units: 2, name: 'scores' }).apply(joined) as tf.SymbolicTensor;
    return tf.model({ inputs: inp, outputs: scores });
  }

  it('is a block output after the addition, not a layer the shortcut bypasses', () => {
    const m = residual();
    expect(spatialLayers(m).map((l) => l.name)).toContain('inner');
    expect(findTargetLayer(m).name).toBe('out');
    // A branch layer can still be asked for by name.
    expect(findTargetLayer(m, 'inner').shape).toEqual([4, 4, 2]);
    m.dispose();
  });

  it('applies inside a nested model too', () => {
    const base = residual();
    const inp = tf.input({ shape: [8, 8, 2] });
    const head = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' });
    const m = tf.model({
      inputs: inp,
      outputs: head.apply(base.apply(inp)) as tf.SymbolicTensor,
    });
    expect(findTargetLayer(m).name).toBe(`${base.name}/out`);
    m.dispose();
  });

  it("is the course ResNet-18's last block output with a position, its plain twin's last conv", () => {
    const resnet = buildResNet18();
    const plain = buildResNet18({ shortcuts: false });
    try {
      // Stage 4 works at 1x1: the last 2x2 activations every path crosses are stage 3's output.
      const r = findTargetLayer(resnet);
      expect(r.name).toBe('stage3_block2_out');
      expect(r.shape).toEqual([2, 2, 256]);
      expect(findTargetLayer(plain).name).toBe('stage4_block1_reduce_relu');
    } finally {
      resnet.dispose();
      plain.dispose();
    }
  });

  // The branch layer `stage4_block1_reduce_relu` gave an all-zero map here with the 10-epoch
  // weights; an empty map's missing peak is tested on a flat input in explain-image.test.ts.
  it('gives the shipped ResNet-18 a map with heat on img/3.png at a block output after the addition', async () => {
    const dir = path.join(PROJECT_ROOT, 'models', 'resnet18-cifar10');
    const loaded: LoadedModel = {
      model: await loadModel(dir),
      meta: await readModelMeta(dir),
      version: SHIPPED_VERSION,
      dir,
    };
    try {
      const bytes = await readFile(path.join(PROJECT_ROOT, 'img', '3.png'));
      const limits = { maxBytes: 1 << 22, maxPixels: 1 << 22 };
      const e = await explainImage(loaded, bytes, limits, {
        method: 'gradcam',
        faithfulness: false,
      });
      expect(e.layer).toBe('stage3_block2_out');
      expect(e.note).toBeUndefined();
      expect(e.peak).toBeDefined();
      expect(Math.max(...e.rawMap.data)).toBeGreaterThan(0);
    } finally {
      loaded.model.dispose();
    }
  });
});
