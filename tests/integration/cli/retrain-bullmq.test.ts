/**
 * `retrain` from the command line with `REDIS_URL` set: the job goes to BullMQ on a real Redis
 * (the workers then take jobs only from there), so a BullMQ worker receives the new row's id.
 */
import { Worker } from 'bullmq';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTraining } from '../../../src/cli/commands/jobs.ts';
import { loadConfig, type Config } from '../../../src/config.ts';
import { parseRetrainArgs } from '../../../src/core/training.ts';
import { openDatabase } from '../../../src/db/database.ts';
import { TRAINING_QUEUE, type TrainingJobData } from '../../../src/jobs/bull.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from '../jobs/redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let root: string;
let config: Config;
/** Keys of this run only, on a Redis other runs may share. */
const prefix = `test-cli-${process.pid}-${Date.now()}`;

describe.skipIf(!REDIS_AVAILABLE)('retrain from the CLI with REDIS_URL', () => {
  beforeAll(async () => {
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'cli-bullmq-'));
    config = loadConfig({ DATA_DIR: root, MODELS_DIR, REDIS_URL: redis.url });
  });

  afterAll(async () => {
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('adds the queued job to BullMQ, where a worker receives it', async () => {
    const received: number[] = [];
    let got: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (got = resolve));
    const worker = new Worker<TrainingJobData>(
      TRAINING_QUEUE,
      (job) => {
        received.push(job.data.runId);
        got();
        return Promise.resolve();
      },
      { connection: { url: redis!.url }, prefix },
    );
    try {
      await worker.waitUntilReady();
      const queued = await withTraining(
        config,
        async (t) => {
          const parsed = parseRetrainArgs('lenet-mnist epochs=1', await t.trainable(), t.limits);
          if (!parsed.ok) throw parsed.error;
          return (await t.enqueue(parsed.value, 'cli')).job;
        },
        { bullPrefix: prefix },
      );
      await Promise.race([
        arrived,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no BullMQ job')), 10_000)),
      ]);
      expect(received).toEqual([queued.id]);
      const db = await openDatabase({ DATA_DIR: root });
      try {
        expect(await db.trainingRuns.get(queued.id)).toMatchObject({
          modelId: 'lenet-mnist',
          status: 'queued',
        });
      } finally {
        await db.close();
      }
    } finally {
      await worker.close();
    }
  }, 30_000);
});
