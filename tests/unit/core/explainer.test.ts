import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { createExplainer } from '../../../src/core/explainer.ts';
import { createTaskQueue } from '../../../src/core/queue.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import type { LoadedModel } from '../../../src/ml/registry.ts';
import { asLoaded, buildCornerModel, squareImage } from '../explain/tiny-models.ts';

const limits = { maxBytes: 1_000_000, maxPixels: 1_000_000 };
let loaded: LoadedModel;
let png: Uint8Array;

beforeAll(async () => {
  await initBackend();
  loaded = asLoaded(buildCornerModel({ channels: 3 }), [16, 16, 3]);
  const pixels = Buffer.from(squareImage({ channels: 3 }).map((v) => Math.round(v * 255)));
  png = await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
    .png()
    .toBuffer();
});

describe('createExplainer', () => {
  it('explains with the model the registry loads, one explanation at a time', async () => {
    let running = 0;
    let peak = 0;
    const explainer = createExplainer(
      {
        get: async (id) => {
          expect(id).toBe('corner');
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          return loaded;
        },
      },
      { limits },
    );
    const before = tf.memory().numTensors;

    const [cam, saliency] = await Promise.all([
      explainer.explain('corner', png, { method: 'gradcam' }),
      explainer.explain('corner', png, { method: 'saliency' }),
    ]);

    expect(peak).toBe(1);
    expect(cam.predicted.label).toBe('corner square');
    expect(saliency.method).toBe('saliency');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('on close, waits for the explanations queued and refuses new ones', async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => (open = r));
    const explainer = createExplainer(
      { get: async () => (await gate, loaded) },
      { limits, queue: createTaskQueue(1) },
    );
    const first = explainer.explain('corner', png, { method: 'gradcam' });
    const second = explainer.explain('corner', png, { method: 'gradcam' });
    expect(explainer.pending).toBe(2);

    let closed = false;
    const closing = explainer.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    await expect(explainer.explain('corner', png, { method: 'gradcam' })).rejects.toThrow(
      'explainer closed',
    );
    open();
    await closing;

    expect((await first).predicted.label).toBe('corner square');
    expect((await second).predicted.label).toBe('corner square');
    expect(explainer.pending).toBe(0);
  });
});

describe('TaskQueue.idle', () => {
  it('resolves at once when empty, else when the last task ends', async () => {
    const q = createTaskQueue(1);
    await q.idle();
    let done = 0;
    const tasks = [1, 2].map(() =>
      q.run(async () => {
        await new Promise((r) => setTimeout(r, 5));
        done++;
      }),
    );
    await q.idle();
    expect(done).toBe(2);
    await Promise.all(tasks);
  });
});
