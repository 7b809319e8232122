import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClassifier } from '../../../src/core/classifier.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { garmentPhoto, plainPhoto, writeClassModels } from '../../fixtures/class-models.ts';
import { fakeContext, imageOf, isPng, makeCore } from './helpers.ts';

let dir: string;
let registry: ModelRegistry;
let env: ReturnType<typeof makeCore>;

beforeAll(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(os.tmpdir(), 'predict-models-'));
  await writeClassModels(dir);
  registry = new ModelRegistry(dir);
  const limits = { maxBytes: 2 * 1024 * 1024, maxPixels: 40_000_000 };
  env = makeCore({
    overrides: { models: registry, classifier: createClassifier(registry, { limits }) },
  });
});
afterAll(async () => {
  await registry.dispose();
  await env.registry.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function send(text: string, image: Uint8Array) {
  const { ctx, out } = fakeContext({ text, image: imageOf(image) });
  await env.core.handle(ctx);
  return out;
}

describe('/predict <model> for CIFAR-10 and Fashion-MNIST models', () => {
  it('names the CIFAR-10 class of a photo, with the chart', async () => {
    const out = await send('/predict tiny-cifar10', await plainPhoto({ r: 20, g: 30, b: 220 }));

    expect(out.texts).toEqual([]);
    const { png, caption } = out.images[0]!;
    expect(isPng(png)).toBe(true);
    expect(caption.split('\n')[0]).toMatch(/^tiny-cifar10: ship \(/);
  });

  it('names the Fashion-MNIST class of a photographed garment, with the generic note only when unsure', async () => {
    const out = await send('/predict TINY-FASHION', await garmentPhoto('white', '#333'));

    const { png, caption } = out.images[0]!;
    expect(isPng(png)).toBe(true);
    expect(caption.split('\n')[0]).toMatch(/^tiny-fashion: Trouser \(/);
    expect(caption).not.toContain('⚠');
  });

  it('stores the submission under the model asked for', async () => {
    const { ctx } = fakeContext({
      text: '/predict tiny-fashion',
      image: imageOf(await garmentPhoto('black', '#eee', false)),
      userId: 'fashion-user',
    });
    await env.core.handle(ctx);

    const rows = env.store.submissions.rows.filter((r) => r.userId === 'fashion-user');
    expect(rows).toMatchObject([{ modelId: 'tiny-fashion', predictedClass: 'Bag' }]);
  });
});
