/**
 * The scaled-out queue: a /retrain from the fake Telegram goes through BullMQ on a real Redis to
 * a trainer worker (here in the test process, forking the job's child as `npm run worker` does),
 * and its progress comes back to the chat through BullMQ's QueueEvents.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelegram, type RunningTelegram } from '../../../src/adapters/telegram/start.ts';
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
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';
import { FIXTURE_SPEC, trainerCore } from './trainer-fixture.ts';
import { startFakeTelegram, type FakeTelegram } from '../../fakes/telegram-server.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from './redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let tg: FakeTelegram;
let bot: RunningTelegram;
let db: Database;
let registry: ModelRegistry;
let trainer: TrainerRuntime;
let worker: BullTrainerWorker;
let root: string;
/** Keys of this run only, on a Redis other runs may share. */
const prefix = `test-${process.pid}-${Date.now()}`;
const teacher = { id: 401, is_bot: false as const, first_name: 'Olga', language_code: 'en' };

describe.skipIf(!REDIS_AVAILABLE)('training jobs through BullMQ on Redis', () => {
  beforeAll(async () => {
    await initBackend();
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'bullmq-trainer-'));
    const dataDir = path.join(root, 'data');
    await writeBandedIdx(dataDir, 'mnist', { train: 1200, test: 100 });
    tg = await startFakeTelegram();
    db = await openDatabase({ DATA_DIR: dataDir });
    registry = new ModelRegistry(MODELS_DIR);
    const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
    const config = loadConfig({
      DATA_DIR: dataDir,
      MODELS_DIR,
      TELEGRAM_BOT_TOKEN: tg.token,
      TELEGRAM_API_ROOT: tg.apiRoot,
      ADMINS: `telegram:${teacher.id}`,
      REDIS_URL: redis.url,
      TRAINER_EMBEDDED: 'false',
    });
    trainer = await startTrainerRuntime(config, db, registry, logger, {
      pollMs: 5000, // slow polls: the progress must come through BullMQ's events
      minEditMs: 300,
      bullPrefix: prefix,
    });
    // `npm run worker` on another machine, in short.
    worker = await startBullWorker({
      ...workerOptions(config, db, logger),
      specDefaults: FIXTURE_SPEC,
      redisUrl: redis.url,
      prefix,
    });
    const core = trainerCore(config, db, registry, trainer, logger);
    bot = await startTelegram(config, core, logger);
    trainer.startReporter(bot.messenger ? [bot.messenger] : []);
  });

  afterAll(async () => {
    await bot?.stop();
    await worker?.close();
    await trainer?.close();
    await tg?.close();
    await registry?.dispose();
    await db?.close();
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('runs /retrain on a BullMQ worker; progress edits reach the chat', async () => {
    const ask = tg.send({ from: teacher, text: '/retrain lenet-mnist epochs=1 force' });
    await tg.waitFor(() => tg.repliesTo(ask.message_id).length > 0, 20_000);
    const queued = tg.repliesTo(ask.message_id)[0]!;
    expect(queued.text).toMatch(/^Job 1: lenet-mnist, epochs=1 force\. Place in the queue: 1\./);
    await tg.waitFor(
      () => tg.sent.some((s) => s.method === 'sendPhoto' && s.replyTo === queued.messageId),
      120_000,
    );
    const edits = tg.edits.filter((e) => e.messageId === queued.messageId).map((e) => e.text);
    // Batch progress reached the chat while the job ran (edits are coalesced to one per 3 s, so
    // on a fast machine a one-epoch job may show a single one).
    expect(
      edits.filter((t) => /epoch 1\/1, batch \d+\/30, loss/.test(t)).length,
    ).toBeGreaterThanOrEqual(1);
    expect(edits.at(-1)).toMatch(
      /^Job 1 done: lenet-mnist version 1 has test accuracy .* Promoted/,
    );
    const run = await db.trainingRuns.get(1);
    expect(run).toMatchObject({ status: 'succeeded', version: '1', leaseOwner: null });
    expect(run?.backend).toMatch(/wasm|cpu|tensorflow/);
  }, 180_000);
});
