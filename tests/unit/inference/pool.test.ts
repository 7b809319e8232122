import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { UserError } from '../../../src/errors.ts';
import { InferencePool } from '../../../src/inference/pool.ts';
import { readImg } from '../core/helpers.ts';

const MODELS_DIR = path.join(PROJECT_ROOT, 'models');
const limits = { maxBytes: 50_000_000, maxPixels: 100_000_000 };

/** The digit 7 as a 12-megapixel PNG: decoding and preprocessing it take well over 20 ms. */
async function bigPhoto(): Promise<Buffer> {
  return sharp(seven).resize(4000, 3000, { fit: 'fill' }).png({ compressionLevel: 1 }).toBuffer();
}

let pool: InferencePool;
let seven: Buffer;

beforeAll(async () => {
  pool = new InferencePool({
    modelsDir: MODELS_DIR,
    dataDirs: [],
    workers: 2,
    preload: ['lenet-mnist'],
    maxQueue: 2,
  });
  seven = await readImg('7.png');
  await pool.ready();
}, 60_000);
afterAll(async () => {
  await pool.close();
});

describe('InferencePool', () => {
  it('classifies in worker threads as the in-process path does', async () => {
    const answers = await Promise.all([
      pool.classify('lenet-mnist', seven, limits),
      pool.classify('lenet-mnist', seven, limits),
    ]);
    for (const { meta, result } of answers) {
      expect(meta.id).toBe('lenet-mnist');
      expect(result.label).toBe('7');
      expect(result.confidence).toBeGreaterThan(0.9);
      expect(result.topK).toHaveLength(3);
    }
  });

  it('explains with Grad-CAM in a worker', async () => {
    const e = await pool.explain('lenet-mnist', seven, limits, {
      method: 'gradcam',
      faithfulness: false,
    });
    expect(e.label).toBe('7');
    expect(e.map.width).toBe(e.image.width);
    expect(e.image.data.length).toBe(e.image.width * e.image.height * 3);
  });

  it('answers user errors of the worker as UserErrors with their id', async () => {
    const error = await pool
      .classify('lenet-mnist', new TextEncoder().encode('%PDF-1.4 hello'), limits)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).id).toBe('image.pdf');
    await expect(pool.classify('no-such-mnist', seven, limits)).rejects.toMatchObject({
      id: 'model.unknown',
    });
  });

  it('stops a job over its deadline, replaces the worker, and keeps answering', async () => {
    const before = pool.stats.replaced;
    const error = await pool
      .classify('lenet-mnist', await bigPhoto(), limits, 3, { deadlineMs: 5 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).id).toBe('job.timeout');
    expect(pool.stats.replaced).toBe(before + 1);
    expect(pool.stats.timedOut).toBeGreaterThanOrEqual(1);
    const { result } = await pool.classify('lenet-mnist', seven, limits);
    expect(result.label).toBe('7');
  }, 60_000);

  it('refuses a job with server.busy when the queue is full', async () => {
    await pool.ready(); // the worker replaced above has started
    const big = await bigPhoto();
    const jobs = Array.from({ length: 5 }, () =>
      pool.classify('lenet-mnist', big, limits).then(
        (r) => r.result.label,
        (e: unknown) => (e instanceof UserError ? e.id : 'failed'),
      ),
    );
    const outcomes = await Promise.all(jobs);
    // Two run at once, two wait, the fifth finds the queue full.
    expect(outcomes.filter((o) => o === '7')).toHaveLength(4);
    expect(outcomes.filter((o) => o === 'server.busy')).toHaveLength(1);
  }, 60_000);

  it('swaps a model version in without dropping the jobs in hand or leaking tensors', async () => {
    await pool.classify('lenet-mnist', seven, limits);
    const before = await pool.memory();
    const during = [
      pool.classify('lenet-mnist', seven, limits),
      pool.reload('lenet-mnist'),
      pool.classify('lenet-mnist', seven, limits),
    ];
    const [a, reloaded, b] = await Promise.all(during);
    expect(reloaded).toHaveProperty('meta.id', 'lenet-mnist');
    expect(a).toHaveProperty('result.label', '7');
    expect(b).toHaveProperty('result.label', '7');
    await pool.classify('lenet-mnist', seven, limits);
    const after = await pool.memory();
    expect(after.map((m) => m.numTensors)).toEqual(before.map((m) => m.numTensors));
  }, 60_000);
});
