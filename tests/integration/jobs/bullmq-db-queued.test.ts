/**
 * Found trying the trainer: a job queued through the database queue (no `REDIS_URL`) was never
 * sent to BullMQ once the operator set `REDIS_URL`, so it stayed `queued` for ever. The bot's
 * start in Redis mode now sends every job queued or running in the database that BullMQ does
 * not hold, once (BullMQ job ids are `run-<id>`), with one log line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startBullProducer, TRAINING_QUEUE } from '../../../src/jobs/bull.ts';
import { startTrainerRuntime } from '../../../src/jobs/trainer-runtime.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from './redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let db: Database;
let root: string;
const prefix = `test-dbqueued-${process.pid}-${Date.now()}`;

describe.skipIf(!REDIS_AVAILABLE)('jobs queued before REDIS_URL was set', () => {
  beforeAll(async () => {
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'bullmq-db-queued-'));
    db = await openDatabase({ DATA_DIR: root });
  });

  afterAll(async () => {
    await db?.close();
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('go to BullMQ when the bot starts with REDIS_URL, each once, with one log line', async () => {
    // Queued through the database queue: rows only.
    const a = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
    const b = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 2 } });
    const done = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
    await db.trainingRuns.markCancelled(done.id);
    // Queued with REDIS_URL already: BullMQ holds it.
    const producer = await startBullProducer(redis!.url, () => undefined, {
      logger: pino({ level: 'silent' }),
      prefix,
    });
    const c = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 3 } });
    await producer.add(c);
    await producer.close();

    const lines: { msg: string; jobs?: number[] }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) },
    );
    const config = loadConfig({
      DATA_DIR: root,
      MODELS_DIR,
      REDIS_URL: redis!.url,
      TRAINER_EMBEDDED: 'false',
    });
    const connection = new Redis(redis!.url, { maxRetriesPerRequest: null });
    const queue = new Queue(TRAINING_QUEUE, { connection, prefix });
    try {
      for (let start = 0; start < 2; start++) {
        const trainer = await startTrainerRuntime(
          config,
          db,
          new ModelRegistry(MODELS_DIR),
          logger,
          { bullPrefix: prefix },
        );
        await trainer.close();
      }
      const waiting = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
      expect(waiting.map((j) => j.id).sort()).toEqual(
        [`run-${a.id}`, `run-${b.id}`, `run-${c.id}`].sort(),
      );
      expect(waiting.map((j) => (j.data as { runId: number }).runId).sort()).toEqual(
        [a.id, b.id, c.id].sort(),
      );
      const sent = lines.filter((l) => l.msg.includes('before REDIS_URL sent to BullMQ'));
      // The first start sends a and b; the second finds them held and says nothing.
      expect(sent.map((l) => l.jobs)).toEqual([[a.id, b.id]]);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  }, 60_000);
});
