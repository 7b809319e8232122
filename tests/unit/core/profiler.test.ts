import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createModelProfiler } from '../../../src/core/profiler.ts';
import { createTaskQueue } from '../../../src/core/queue.ts';
import { buildLeNet } from '../../../src/ml/architectures/lenet.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { readModelMeta } from '../../../src/ml/model-meta.ts';
import type { LoadedModel } from '../../../src/ml/registry.ts';
import { MODELS_DIR, QUICK_LATENCY } from './helpers.ts';

const dir = path.join(MODELS_DIR, 'lenet-mnist');
let loaded: LoadedModel;

beforeAll(async () => {
  await initBackend();
  loaded = { meta: await readModelMeta(dir), model: buildLeNet(), dir, version: '0' };
});
afterAll(() => {
  loaded.model.dispose();
});

describe('createModelProfiler', () => {
  it('measures a model once, for concurrent and later requests alike', async () => {
    const get = vi.fn(() => Promise.resolve(loaded));
    const profiler = createModelProfiler({ get }, QUICK_LATENCY);
    const [a, b] = await Promise.all([
      profiler.profile('lenet-mnist'),
      profiler.profile('lenet-mnist'),
    ]);
    const c = await profiler.profile('lenet-mnist');
    expect(get).toHaveBeenCalledTimes(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(a.stats.params.total).toBe(44_426);
    expect(a.weightFileBytes).toBe(44_426 * 4);
    expect(a.latency.throughputImages).toBe(QUICK_LATENCY.throughputBatch);
  });

  it('does not remember a failure', async () => {
    const get = vi
      .fn<(id: string) => Promise<LoadedModel>>()
      .mockRejectedValueOnce(new Error('disk busy'))
      .mockResolvedValue(loaded);
    const profiler = createModelProfiler({ get }, QUICK_LATENCY);
    await expect(profiler.profile('lenet-mnist')).rejects.toThrow('disk busy');
    await expect(profiler.profile('lenet-mnist')).resolves.toHaveProperty('meta.id', 'lenet-mnist');
    expect(get).toHaveBeenCalledTimes(2);
  });

  it('measures in the queue it is given, after the classification already in it', async () => {
    const queue = createTaskQueue(1);
    let release = (): void => undefined;
    const classification = queue.run(() => new Promise<void>((r) => (release = r)));
    const get = vi.fn(() => Promise.resolve(loaded));
    const profiler = createModelProfiler({ get }, QUICK_LATENCY, queue);

    const profile = profiler.profile('lenet-mnist');
    await new Promise((r) => setTimeout(r, 20));
    expect(get).not.toHaveBeenCalled();
    release();
    await classification;

    await expect(profile).resolves.toHaveProperty('meta.id', 'lenet-mnist');
    expect(get).toHaveBeenCalledTimes(1);
  });
});
