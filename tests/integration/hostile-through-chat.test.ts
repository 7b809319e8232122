/**
 * Issue 19's done-when through the chat: hostile files sent by one user are refused from their
 * headers with a localized reply and a row each, while another user's photo, sent at the same
 * time, is answered in about its usual time (the core over the inference pool, as `npm start`).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore, type Core } from '../../src/core/dispatcher.ts';
import { createMemoryStore } from '../../src/core/memory-store.ts';
import { buildCoreServices } from '../../src/core/services.ts';
import { InferencePool } from '../../src/inference/pool.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import {
  blackPng,
  flatImage,
  manyFrameGif,
  manyScanJpeg,
  tiffBomb,
} from '../fixtures/hostile-files.ts';
import { fakeContext, imageOf, MODELS_DIR, readImg } from '../unit/core/helpers.ts';

let pool: InferencePool;
let core: Core;
let store: ReturnType<typeof createMemoryStore>;
let seven: Buffer;

beforeAll(async () => {
  pool = new InferencePool({
    modelsDir: MODELS_DIR,
    dataDirs: [],
    workers: 2,
    preload: ['lenet-mnist'],
    profiling: false,
  });
  store = createMemoryStore();
  const services = buildCoreServices({
    config: {
      MAX_IMAGE_BYTES: 20_000_000,
      MAX_IMAGE_PIXELS: 16_000_000,
      DEFAULT_MODEL: 'lenet-mnist',
    },
    registry: new ModelRegistry(MODELS_DIR),
    persistence: store,
    logger: pino({ level: 'silent' }),
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

/** Sends the photo of a 7 as `userId`; returns the milliseconds until it was answered. */
async function photoLatency(userId: string): Promise<number> {
  const { ctx, out } = fakeContext({ userId, image: imageOf(seven) });
  const t0 = performance.now();
  await core.handle(ctx);
  const ms = performance.now() - t0;
  expect(out.images[0]?.caption).toMatch(/^lenet-mnist: 7 /);
  return ms;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('hostile files through the chat (issue 19)', () => {
  it('refuses each from its header while another user is answered in about the usual time', async () => {
    const hostile: [string, Buffer, string][] = [
      [
        '1000-band TIFF',
        tiffBomb({ width: 630, height: 630, samples: 1000, bits: 8 }),
        'image.too_many_channels',
      ],
      [
        'float TIFF',
        tiffBomb({ width: 500, height: 500, samples: 3, bits: 32, sampleFormat: 3 }),
        'image.unsupported_sample_format',
      ],
      ['JPEG with 3,000 extra scans', await manyScanJpeg(1600, 1200, 3000), 'image.too_many_scans'],
      ['1 x 400,000 PNG', blackPng(1, 400_000), 'image.extreme_aspect'],
      ['GIF of 20,000 frames', manyFrameGif(20_000), 'image.too_many_frames'],
      ['36 MP WebP', await flatImage('webp', 6000, 6000), 'image.too_many_pixels'],
    ];

    await photoLatency('warm-up');
    const usual: number[] = [];
    for (let i = 0; i < 5; i++) usual.push(await photoLatency(`usual-${i}`));

    const during: number[] = [];
    for (const [name, bytes, code] of hostile) {
      const attack = fakeContext({ userId: 'mallory', image: imageOf(bytes) });
      const t0 = performance.now();
      const [ms] = await Promise.all([
        photoLatency(`ann-${name}`),
        core.handle(attack.ctx).then(() => {
          // Refused from the header: nowhere near the seconds a decode of such a file takes.
          expect(performance.now() - t0, name).toBeLessThan(5000);
        }),
      ]);
      during.push(ms);
      expect(attack.out.images, name).toEqual([]);
      expect(attack.out.texts, name).toHaveLength(1);
      const mallory = store.submissions.rows.filter((r) => r.userId === 'mallory').at(-1)!;
      expect(mallory.errorCode, name).toBe(code);
      expect(mallory.imageBytes, name).toBe(bytes.length);
      // Nothing refused is stored.
      expect(mallory.imagePath, name).toBeNull();
    }
    // The other user's photo kept about its usual latency (a quarter second of slack for the
    // scheduler of a shared 2-core machine).
    expect(median(during)).toBeLessThanOrEqual(Math.max(2 * median(usual), median(usual) + 250));
    expect(store.submissions.rows.filter((r) => r.userId === 'mallory')).toHaveLength(
      hostile.length,
    );
  }, 120_000);
});
