/**
 * A BullMQ job whose row is given back to the queue (its process died; it resumes from its
 * checkpoint) is queued again in BullMQ, so a worker runs it again: the row does not stay
 * `queued` behind a BullMQ job counted completed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startBullProducer, startBullWorker } from '../../../src/jobs/bull.ts';
import { JobFailure } from '../../../src/jobs/protocol.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from './redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let db: Database;
let root: string;
const prefix = `test-requeue-${process.pid}-${Date.now()}`;
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });

describe.skipIf(!REDIS_AVAILABLE)('BullMQ jobs given back to the queue', () => {
  beforeAll(async () => {
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'bullmq-requeue-'));
    db = await openDatabase({ DATA_DIR: root });
  });

  afterAll(async () => {
    await db?.close();
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('runs a job again after its process died', async () => {
    const calls: string[] = [];
    const worker = await startBullWorker({
      trainingRuns: db.trainingRuns,
      modelVersions: db.modelVersions,
      folders: { modelsDir: MODELS_DIR, dataDir: root },
      logger,
      leaseMs: 3000,
      maxAttempts: 2,
      redisUrl: redis!.url,
      prefix,
      // First try: the child dies; second: it fails for good (recorded, no third try).
      runner: (spec) => {
        calls.push(spec.model);
        return Promise.reject(
          calls.length === 1
            ? new JobFailure('worker', 'killed by SIGKILL')
            : new JobFailure('other', 'second try failed'),
        );
      },
    });
    const producer = await startBullProducer(redis!.url, () => undefined, { logger, prefix });
    try {
      const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
      await producer.add(run);
      const deadline = Date.now() + 15_000;
      while ((await db.trainingRuns.get(run.id))?.status !== 'failed' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(calls).toEqual(['lenet-mnist', 'lenet-mnist']);
      expect(await db.trainingRuns.get(run.id)).toMatchObject({
        status: 'failed',
        attempts: 2,
        leaseOwner: null,
      });
    } finally {
      await producer.close();
      await worker.close();
    }
  }, 30_000);

  it('runs a job again on another worker after the first one stopped mid-job', async () => {
    const options = {
      trainingRuns: db.trainingRuns,
      modelVersions: db.modelVersions,
      folders: { modelsDir: MODELS_DIR, dataDir: root },
      logger,
      leaseMs: 3000,
      maxAttempts: 2,
      redisUrl: redis!.url,
      prefix,
    };
    let started: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    // The first worker's job runs until the worker stops (its signal aborts it).
    const first = await startBullWorker({
      ...options,
      runner: (_spec, { signal }) =>
        new Promise((_, reject) => {
          started();
          signal.addEventListener('abort', () => reject(new JobFailure('other', 'stopped')));
        }),
    });
    const producer = await startBullProducer(redis!.url, () => undefined, { logger, prefix });
    try {
      const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
      await producer.add(run);
      await running;
      await first.close();
      expect(await db.trainingRuns.get(run.id)).toMatchObject({
        status: 'queued',
        leaseOwner: null,
      });
      const second = await startBullWorker({
        ...options,
        runner: () => Promise.reject(new JobFailure('other', 'second worker ran it')),
      });
      try {
        const deadline = Date.now() + 15_000;
        while ((await db.trainingRuns.get(run.id))?.status !== 'failed' && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        expect(await db.trainingRuns.get(run.id)).toMatchObject({
          status: 'failed',
          error: 'other: second worker ran it',
        });
      } finally {
        await second.close();
      }
    } finally {
      await producer.close();
      await first.close().catch(() => undefined);
    }
  }, 30_000);
});
