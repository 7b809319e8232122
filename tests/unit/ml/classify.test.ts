import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { buildLeNet } from '../../../src/ml/architectures/lenet.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { classifyImage, classifyInput } from '../../../src/ml/classify.ts';
import { saveModel } from '../../../src/ml/model-io.ts';
import { META_FILE, type ModelMeta } from '../../../src/ml/model-meta.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { garmentPhoto, plainPhoto, writeClassModels } from '../../fixtures/class-models.ts';

const limits = { maxBytes: 1 << 20, maxPixels: 1 << 22 };
let dir: string;
let registry: ModelRegistry;

function meta(id: string, extra: Partial<ModelMeta> = {}): ModelMeta {
  return {
    id,
    architecture: 'lenet',
    dataset: 'synthetic',
    inputShape: [28, 28, 1],
    preprocess: 'mnist-digit',
    classNames: ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'],
    ...extra,
  };
}

beforeAll(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(os.tmpdir(), 'classify-'));
  const model = buildLeNet({ seed: 3 });
  await saveModel(model, path.join(dir, 'tiny'), { [META_FILE]: JSON.stringify(meta('tiny')) });
  model.dispose();
  registry = new ModelRegistry(dir);
});

afterAll(async () => {
  await registry.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A dark vertical stroke on white paper: a "1". */
async function strokePng(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200" fill="white"/><path d="M100 30 L100 170" stroke="black" stroke-width="12"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

describe('classifyInput', () => {
  it('returns the arg-max class, sorted top-k and probabilities that sum to 1, without leaking tensors', async () => {
    const loaded = await registry.get('tiny');
    const input = {
      data: new Float32Array(784).fill(0.3),
      width: 28,
      height: 28,
      channels: 1 as const,
    };
    const before = tf.memory().numTensors;
    const r = await classifyInput(loaded, input, 3);
    expect(tf.memory().numTensors).toBe(before);
    const expected = tf.tidy(() =>
      (loaded.model.predict(tf.tensor4d(input.data, [1, 28, 28, 1])) as tf.Tensor).dataSync(),
    );
    const argmax = Array.from(expected).indexOf(Math.max(...expected));
    expect(r.classIndex).toBe(argmax);
    expect(r.label).toBe(loaded.meta.classNames[argmax]);
    expect(r.topK).toHaveLength(3);
    expect(r.topK[0]!.probability).toBeGreaterThanOrEqual(r.topK[1]!.probability);
    expect(r.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // An untrained net is unsure: without a calibrated criterion, under 0.5 is not confident.
    expect(r.confident).toBe(r.confidence >= 0.5);
  });
});

describe('classifyImage', () => {
  it('runs the photo pipeline and leaks no tensors', async () => {
    const loaded = await registry.get('tiny');
    const png = await strokePng();
    await classifyImage(loaded, png, limits);
    const before = tf.memory().numTensors;
    const r = await classifyImage(loaded, png, limits);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.input.width).toBe(28);
    expect(r.input.data.length).toBe(784);
  });

  it('refuses a PDF with its own error id', async () => {
    const loaded = await registry.get('tiny');
    const pdf = new TextEncoder().encode('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n');
    await expect(classifyImage(loaded, pdf, limits)).rejects.toMatchObject({ id: 'image.pdf' });
  });
});

describe('ModelRegistry', () => {
  it('lists the models of its folder', async () => {
    expect((await registry.list()).map((m) => m.id)).toEqual(['tiny']);
  });

  it('names the known models when asked for an unknown one', async () => {
    const err = await registry.get('resnet-9000').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).id).toBe('model.unknown');
    expect((err as UserError).message).toContain('tiny');
  });

  it('loads a model once for concurrent callers', async () => {
    const [a, b] = await Promise.all([registry.get('tiny'), registry.get('tiny')]);
    expect(a.model).toBe(b.model);
  });
});

describe('classifyImage with CIFAR-10 and Fashion-MNIST models (quantized)', () => {
  let classes: ModelRegistry;
  let classesDir: string;
  beforeAll(async () => {
    classesDir = await mkdtemp(path.join(os.tmpdir(), 'classify-classes-'));
    await writeClassModels(classesDir);
    classes = new ModelRegistry(classesDir);
  });
  afterAll(async () => {
    await classes.dispose();
    await rm(classesDir, { recursive: true, force: true });
  });

  it.each([
    [{ r: 230, g: 20, b: 20 }, 'automobile'],
    [{ r: 20, g: 20, b: 230 }, 'ship'],
  ])(
    'resizes a photo to 32x32 RGB in [0, 1] for a CIFAR-10 model: %o is %s',
    async (colour, label) => {
      const loaded = await classes.get('tiny-cifar10');
      const photo = await plainPhoto(colour);
      const before = tf.memory().numTensors;

      const r = await classifyImage(loaded, photo, limits);

      expect(tf.memory().numTensors).toBe(before);
      expect(r.label).toBe(label);
      expect(r.model).toBe('tiny-cifar10');
      expect(r.input).toMatchObject({ width: 32, height: 32, channels: 3, range: 'unit' });
      expect(r.input.data[0]).toBeCloseTo(colour.r / 255, 5);
    },
  );

  it.each([
    ['a dark tall garment on white', 'white', '#222', true, 'Trouser'],
    ['a bright tall garment on black', 'black', '#ddd', true, 'Trouser'],
    ['a dark wide one on white', 'white', '#222', false, 'Bag'],
  ] as const)('names the Fashion-MNIST class of %s', async (_, background, shape, tall, label) => {
    const loaded = await classes.get('tiny-fashion');
    const photo = await garmentPhoto(background, shape, tall);
    const before = tf.memory().numTensors;

    const r = await classifyImage(loaded, photo, limits);

    expect(tf.memory().numTensors).toBe(before);
    expect(r.label).toBe(label);
    expect(r.confident).toBe(true);
    expect(r.input).toMatchObject({ width: 28, height: 28, channels: 1, range: 'unit' });
    expect(loaded.meta.quantization?.dtype).toBe('uint8');
  });
});
