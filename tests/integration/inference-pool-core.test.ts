/** The core over the inference pool: photos are answered while the first /compare measures. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore, type Core } from '../../src/core/dispatcher.ts';
import { createMemoryStore } from '../../src/core/memory-store.ts';
import { buildCoreServices } from '../../src/core/services.ts';
import type { CoreServices } from '../../src/core/command.ts';
import { InferencePool } from '../../src/inference/pool.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import { fakeContext, imageOf, MODELS_DIR, QUICK_LATENCY, readImg } from '../unit/core/helpers.ts';

let pool: InferencePool;
let core: Core;
let services: CoreServices;
let store: ReturnType<typeof createMemoryStore>;
let seven: Buffer;

beforeAll(async () => {
  pool = new InferencePool({
    modelsDir: MODELS_DIR,
    dataDirs: [],
    workers: 2,
    preload: ['lenet-mnist'],
  });
  store = createMemoryStore();
  services = buildCoreServices({
    config: {
      MAX_IMAGE_BYTES: 2_000_000,
      MAX_IMAGE_PIXELS: 40_000_000,
      DEFAULT_MODEL: 'lenet-mnist',
    },
    registry: new ModelRegistry(MODELS_DIR),
    persistence: store,
    logger: pino({ level: 'silent' }),
    latency: QUICK_LATENCY,
    pool,
  });
  core = createCore(services, { rateLimit: false, chatRateLimit: false });
  seven = await readImg('7.png');
  await pool.ready();
}, 60_000);
afterAll(async () => {
  await core.close(1000);
  await pool.close();
});

/** Sends the photo and returns the milliseconds until it was answered, checking the answer. */
async function photoLatency(userId: string): Promise<number> {
  const { ctx, out } = fakeContext({ userId, image: imageOf(seven) });
  const t0 = performance.now();
  await core.handle(ctx);
  const ms = performance.now() - t0;
  expect(out.images[0]?.caption).toMatch(/^lenet-mnist: 7 /);
  return ms;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the core over the inference pool', () => {
  it('answers a photo sent while the first /compare runs within twice its usual latency', async () => {
    await photoLatency('warm-up');
    const usual: number[] = [];
    for (let i = 0; i < 5; i++) usual.push(await photoLatency(`usual-${i}`));

    const compare = fakeContext({ text: '/compare', userId: 'instructor' });
    const compared = core.handle(compare.ctx);
    const during: number[] = [];
    for (let i = 0; i < 5; i++) during.push(await photoLatency(`during-${i}`));
    await compared;

    // /compare did not wait for the measurements: it said how long they will take.
    expect(compare.out.texts).toEqual([
      expect.stringMatching(
        /^Measuring the models' speed on this server: ready in about \d+ seconds?\./,
      ),
    ]);
    expect(median(during)).toBeLessThanOrEqual(2 * median(usual));
    expect(store.submissions.rows.filter((r) => r.errorCode === null)).toHaveLength(11);
  }, 120_000);

  it('answers /compare with the full table once the background measurements are done', async () => {
    const ids = (await services.models.list()).map((m) => m.id);
    const until = Date.now() + 100_000;
    while (ids.some((id) => !services.profiler.measured(id) && !services.profiler.failed(id))) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 200));
    }
    const { ctx, out } = fakeContext({ text: '/compare', userId: 'instructor' });
    await core.handle(ctx);
    expect(out.images).toHaveLength(1);
    expect(out.images[0]!.caption).toMatch(new RegExp(`^${ids.length} models: `));
    expect(out.images[0]!.caption).not.toContain('still being measured');
  }, 120_000);

  it('holds the same number of tensors in every worker after photos and Grad-CAMs', async () => {
    await photoLatency('tensors');
    const before = await pool.memory();
    for (let i = 0; i < 20; i++) await photoLatency(`tensors-${i}`);
    for (let i = 0; i < 4; i++) {
      const { ctx, out } = fakeContext({
        text: '/gradcam',
        userId: `cam-${i}`,
        image: imageOf(seven),
      });
      await core.handle(ctx);
      expect(out.images).toHaveLength(1);
    }
    expect((await pool.memory()).map((m) => m.numTensors)).toEqual(before.map((m) => m.numTensors));
  }, 120_000);
});
