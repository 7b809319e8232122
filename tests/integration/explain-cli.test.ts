/**
 * The `gradcam` and `saliency` commands end to end, and `mobilenet-imagenet` resolved from a
 * data folder (a tiny stand-in model built here: the real one is third-party data).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { explainImage } from '../../src/explain/explain-image.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { IMAGENET_CLASSES_FILE, IMAGENET_MODEL_FOLDER } from '../../src/ml/imagenet.ts';
import { saveModel } from '../../src/ml/model-io.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';

const run = promisify(execFile);
const BIN = path.join(PROJECT_ROOT, 'bin', 'cnn-classroom');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'explain-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(BIN, args, {
      cwd: tmp,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('bin/cnn-classroom gradcam', () => {
  it('writes the overlay and prints class, layer, peak and faithfulness as JSON', async () => {
    const out = path.join(tmp, 'seven.png');
    const r = await cli([
      'gradcam',
      path.join(PROJECT_ROOT, 'img', '7.png'),
      '--model',
      'lenet-mnist',
      '--json',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({
      model: 'lenet-mnist',
      label: '7',
      layer: 'conv2',
      method: 'gradcam',
      space: 'model-input',
      out,
    });
    const peak = j.peak as { x: unknown; y: unknown };
    expect([typeof peak.x, typeof peak.y]).toEqual(['number', 'number']);
    const f = j.faithfulness as { hotDrop: unknown; randomDrop: unknown };
    expect([typeof f.hotDrop, typeof f.randomDrop]).toEqual(['number', 'number']);
    expect((await sharp(out).metadata()).format).toBe('png');
  });

  it('fails naming the valid layers for a wrong --layer', async () => {
    const r = await cli([
      'gradcam',
      path.join(PROJECT_ROOT, 'img', '7.png'),
      '--model',
      'lenet-mnist',
      '--layer',
      'conv9',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('argument.invalid');
    expect(r.stderr).toContain('valid layers: conv1, pool1, conv2, pool2');
  });
});

describe('bin/cnn-classroom saliency', () => {
  it('writes the SmoothGrad overlay of a digit', async () => {
    const r = await cli([
      'saliency',
      path.join(PROJECT_ROOT, 'img', '3.png'),
      '--model',
      'lenet-mnist',
      '--smooth',
      '4',
      '--colormap',
      'viridis',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('saliency map (SmoothGrad)');
    expect((await sharp(path.join(tmp, '3-smoothgrad.png')).metadata()).width).toBeGreaterThan(400);
  });
});

describe('mobilenet-imagenet', () => {
  it('is found in a data folder, with its class names, and can be explained', async () => {
    await initBackend();
    const shared = path.join(tmp, 'shared');
    const inp = tf.input({ shape: [224, 224, 3] });
    let h = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 8,
        strides: 8,
        activation: 'relu',
        name: 'conv_pw_13_relu',
      })
      .apply(inp) as tf.SymbolicTensor;
    h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
    h = tf.layers.dense({ units: 1000 }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.activation({ activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: h });
    await saveModel(model, path.join(shared, IMAGENET_MODEL_FOLDER));
    model.dispose();
    await mkdir(path.dirname(path.join(shared, IMAGENET_CLASSES_FILE)), { recursive: true });
    const names = Array.from({ length: 1000 }, (_, i) => `class ${i}, synonym ${i}`);
    await writeFile(path.join(shared, IMAGENET_CLASSES_FILE), JSON.stringify(names));

    const registry = ModelRegistry.fromConfig({
      MODELS_DIR: path.join(PROJECT_ROOT, 'models'),
      DATA_DIR: path.join(tmp, 'nothing'),
      CNN_SHARED_DATA: shared,
    });
    const ids = (await registry.list()).map((m) => m.id);
    // The data folder's model beside every shipped one, in id order.
    expect(ids).toContain('lenet-mnist');
    expect(ids).toContain('mobilenet-imagenet');
    expect(ids).toEqual([...ids].sort());
    const loaded = await registry.get('mobilenet-imagenet');
    expect(loaded.meta).toMatchObject({ preprocess: 'rgb-signed', inputShape: [224, 224, 3] });
    const photo = await sharp({
      create: { width: 300, height: 200, channels: 3, background: '#3a7' },
    })
      .jpeg()
      .toBuffer();
    const e = await explainImage(
      loaded,
      photo,
      { maxBytes: 1 << 22, maxPixels: 1 << 22 },
      {
        method: 'gradcam',
        target: { kind: 'name', name: 'synonym 7' },
        faithfulness: false,
      },
    );
    expect(e).toMatchObject({
      classIndex: 7,
      label: 'class 7',
      layer: 'conv_pw_13_relu',
      scoreKind: 'pre-softmax',
    });
    expect([e.map.width, e.map.height]).toEqual([300, 200]);
    await registry.dispose();
    // Without the data folder, only the shipped models.
    expect(
      (await new ModelRegistry(path.join(PROJECT_ROOT, 'models')).list()).map((m) => m.id),
    ).toEqual(ids.filter((id) => id !== 'mobilenet-imagenet'));
  });
});
