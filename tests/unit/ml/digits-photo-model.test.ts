import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { buildDigitNet } from '../../../src/ml/architectures/digitnet.ts';
import { classifyImage } from '../../../src/ml/classify.ts';
import { ModelRegistry, type LoadedModel } from '../../../src/ml/registry.ts';
import { RECIPES } from '../../../src/trainer/recipes.ts';

const LIMITS = { maxBytes: 20_000_000, maxPixels: 40_000_000 };
const registry = new ModelRegistry(path.join(PROJECT_ROOT, 'models'));
let photo: LoadedModel;
let course: LoadedModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  photo = await registry.get('digits-photo');
  course = await registry.get('lenet-mnist');
});
afterAll(async () => {
  await registry.dispose();
});

const layerShapes = (m: tf.LayersModel) =>
  m.layers.map((l) => [l.getClassName(), (l.outputShape as number[]).slice(1)]);

describe('the shipped digits-photo model', () => {
  it("has the wider LeNet's layers (digitnet.ts, as its recipe builds), 431,080 parameters, input [28, 28, 1]", () => {
    expect(photo.model.countParams()).toBe(431_080);
    const built = buildDigitNet({ seed: 1 });
    expect(layerShapes(photo.model)).toEqual(layerShapes(built));
    built.dispose();
    expect(photo.meta.inputShape).toEqual([28, 28, 1]);
    expect(photo.meta.preprocess).toBe('mnist-digit');
    expect(photo.meta.architecture).toBe(RECIPES['digits-photo']!.architecture);
  });

  it('records the train command that reproduces it, its MNIST test accuracy and a "not a digit" threshold', async () => {
    const meta = JSON.parse(
      await readFile(path.join(PROJECT_ROOT, 'models', 'digits-photo', 'meta.json'), 'utf8'),
    ) as { training: { command: string }; testAccuracy: number; ood: { minProbability: number } };
    expect(meta.training.command).toMatch(/^bin\/cnn-classroom train digits-photo /);
    expect(meta.testAccuracy).toBeGreaterThanOrEqual(0.985);
    expect(meta.ood.minProbability).toBeGreaterThan(0.1);
    expect(meta.ood.minProbability).toBeLessThan(0.9);
  });

  it.each([...Array(10).keys()])('reads img/%i.png as that digit, confidently', async (d) => {
    const bytes = await readFile(path.join(PROJECT_ROOT, 'img', `${d}.png`));
    const r = await classifyImage(photo, bytes, LIMITS);
    expect(r.label).toBe(String(d));
    expect(r.confident).toBe(true);
  });

  it('reads the sideways photo img/extra/8-sideways.jpg as 8 and flags img/abrakadabra.png, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const eight = await classifyImage(
      photo,
      await readFile(path.join(PROJECT_ROOT, 'img', 'extra', '8-sideways.jpg')),
      LIMITS,
    );
    expect(eight.label).toBe('8');
    const word = await classifyImage(
      photo,
      await readFile(path.join(PROJECT_ROOT, 'img', 'abrakadabra.png')),
      LIMITS,
    );
    expect(word.confident).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves lenet-mnist, the course example, at 99.0% or more on MNIST test', () => {
    expect(course.meta.architecture).toBe('lenet');
    expect(course.meta.testAccuracy).toBeGreaterThanOrEqual(0.99);
  });
});
