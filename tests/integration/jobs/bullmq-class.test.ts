/**
 * issue 16: a `with=class` job through BullMQ on a real Redis: queued by the bot's trainer
 * service, run by a separate BullMQ worker (as `npm run worker` does), which reads the class's
 * labelled photos from the shared database and fine-tunes in a child process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { importLabelledFolder } from '../../../src/cli/commands/labels.ts';
import { loadConfig } from '../../../src/config.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startBullWorker, type BullTrainerWorker } from '../../../src/jobs/bull.ts';
import {
  startTrainerRuntime,
  workerOptions,
  type TrainerRuntime,
} from '../../../src/jobs/trainer-runtime.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { STUDENTS, STUDENT_PATTERN, writeClassFolder } from '../../fixtures/class-photos.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from './redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let db: Database;
let registry: ModelRegistry;
let trainer: TrainerRuntime;
let worker: BullTrainerWorker;
let root: string;
const prefix = `test-class-${process.pid}-${Date.now()}`;

describe.skipIf(!REDIS_AVAILABLE)('with=class jobs through BullMQ', () => {
  beforeAll(async () => {
    await initBackend();
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'bullmq-class-'));
    const dataDir = path.join(root, 'data');
    await writeBandedIdx(dataDir, 'mnist', { train: 600, test: 100 });
    await writeClassFolder(path.join(root, 'class'), STUDENTS.slice(0, 5));
    db = await openDatabase({ DATA_DIR: dataDir });
    registry = new ModelRegistry(MODELS_DIR);
    const imported = await importLabelledFolder(
      db,
      await registry.get('lenet-mnist'),
      path.join(root, 'class'),
      {
        studentPattern: new RegExp(STUDENT_PATTERN),
        limits: { maxBytes: 20_000_000, maxPixels: 16_000_000 },
      },
    );
    expect(imported.imported).toBe(50);
    const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
    const config = loadConfig({
      DATA_DIR: dataDir,
      MODELS_DIR,
      REDIS_URL: redis.url,
      TRAINER_EMBEDDED: 'false',
      CLASS_MIN_PHOTOS: '40',
    });
    trainer = await startTrainerRuntime(config, db, registry, logger, { bullPrefix: prefix });
    worker = await startBullWorker({
      ...workerOptions(config, db, logger),
      specDefaults: { calibrate: false, batchSize: 32, seed: 2 },
      redisUrl: redis.url,
      prefix,
    });
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await trainer?.close();
    await registry?.dispose();
    await db?.close();
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('a BullMQ worker fine-tunes on the class photos and records the class figures', async () => {
    const { job } = await trainer.training.enqueue(
      { model: 'lenet-mnist', with: 'class', epochs: 1 },
      'cli',
    );
    const done = await vi.waitFor(
      async () => {
        const j = await trainer.training.get(job.id);
        if (j?.state !== 'succeeded') throw new Error(`job is ${j?.state}`);
        return j;
      },
      { timeout: 150_000, interval: 250 },
    );
    const c = done.result?.classFinetune;
    expect(c).toMatchObject({ parentVersion: '0', heldOutPhotos: expect.any(Number) as number });
    expect(c!.heldOutCorrect.before).toBe(Math.round(c!.before.classHeldOut * c!.heldOutPhotos));
    expect(done.result?.promoted).toBe(c!.promote);
    const row = await db.modelVersions.get('lenet-mnist', done.version!);
    expect(row?.params).toMatchObject({ with: 'class', epochs: 1 });
    expect(row?.datasetFingerprint).toMatch(/^[0-9a-f]{64}$/);
  }, 180_000);
});
