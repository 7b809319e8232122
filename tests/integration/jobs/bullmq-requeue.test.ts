/**
 * A BullMQ job whose row is given back to the queue (its process died; it resumes from its
 * checkpoint) is queued again in BullMQ, so a worker runs it again: the row does not stay
 * `queued` behind a BullMQ job counted completed. Nor `running`: a killed worker's job that
 * BullMQ hands out again before the worker's lease ends runs once it has ended.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbClient, resolveDatabaseTarget } from '../../../src/db/client.ts';
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

  /** Options of a BullMQ worker over this database, leases of 3 s. */
  const workerOptions = (maxAttempts: number) => ({
    trainingRuns: db.trainingRuns,
    modelVersions: db.modelVersions,
    folders: { modelsDir: MODELS_DIR, dataDir: root },
    logger,
    leaseMs: 3000,
    maxAttempts,
    redisUrl: redis!.url,
    prefix,
  });

  /**
   * A job of `model` whose worker was killed while storing its version 1 (attempt 1): leased to
   * `killed` for `leaseMs` more, the version's row left pending.
   */
  async function killedWhileStoring(model: string, leaseMs: number) {
    const run = await db.trainingRuns.create({ modelId: model, params: { epochs: 1 } });
    expect((await db.trainingRuns.claimById(run.id, 'killed', leaseMs))?.attempts).toBe(1);
    await db.modelVersions.register({
      modelId: model,
      version: '1',
      path: 'x',
      exclusive: true,
      jobId: run.id,
      files: [{ name: 'model.json', bytes: Buffer.from('{}') }],
    });
    const client = createDbClient(resolveDatabaseTarget({ DATA_DIR: root }));
    await client.prisma.modelVersion.updateMany({
      where: { modelId: model, version: '1' },
      data: { pending: true },
    });
    await client.close();
    return run;
  }

  it("runs a killed worker's job once its lease ends, though BullMQ hands it out before, and its pending version goes", async () => {
    const model = 'lenet-mnist';
    // The worker killed while storing the job's version: its lease runs 3 s more (heartbeats
    // renew it up to the kill).
    const run = await killedWhileStoring(model, 3000);
    const worker = await startBullWorker({
      ...workerOptions(2),
      runner: () => Promise.reject(new JobFailure('other', 'ran again')),
    });
    const producer = await startBullProducer(redis!.url, () => undefined, { logger, prefix });
    try {
      // BullMQ hands the job out again at once (a killed worker's lock can lapse before its
      // lease: BullMQ's stalled-job check), while the row is still leased to the dead worker.
      await producer.add(run);
      const deadline = Date.now() + 20_000;
      while ((await db.trainingRuns.get(run.id))?.status === 'running' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(await db.trainingRuns.get(run.id)).toMatchObject({
        status: 'failed',
        error: 'other: ran again',
        attempts: 2,
        leaseOwner: null,
      });
      // The dead worker's pending row went with the job's end (the worker's clean-up).
      await new Promise((r) => setTimeout(r, 500));
      expect((await db.modelVersions.footprint(model)).map((v) => v.version)).toEqual([]);
    } finally {
      await producer.close();
      await worker.close();
    }
  }, 30_000);

  it('fails a job whose worker died after its last try (TRAIN_MAX_ATTEMPTS), as the embedded worker does, and removes its pending version', async () => {
    const model = 'plaincnn-fashion';
    // Its one try (maxAttempts 1): the worker was killed while storing, its lease has ended.
    const run = await killedWhileStoring(model, 1);
    await new Promise((r) => setTimeout(r, 20));
    const calls: string[] = [];
    const worker = await startBullWorker({
      ...workerOptions(1),
      runner: () => {
        calls.push('ran');
        return Promise.reject(new JobFailure('other', 'ran past its last try'));
      },
    });
    const producer = await startBullProducer(redis!.url, () => undefined, { logger, prefix });
    try {
      // BullMQ hands the stalled job out again.
      await producer.add(run);
      const deadline = Date.now() + 15_000;
      while ((await db.trainingRuns.get(run.id))?.status === 'running' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500));
      expect(calls).toEqual([]);
      expect(await db.trainingRuns.get(run.id)).toMatchObject({
        status: 'failed',
        error: 'worker stopped 1 times (last lease by killed)',
        attempts: 1,
        leaseOwner: null,
      });
      expect((await db.modelVersions.footprint(model)).map((v) => v.version)).toEqual([]);
    } finally {
      await producer.close();
      await worker.close();
    }
  }, 30_000);
  it('cancels at once a running job whose worker died: no worker would ever act on it', async () => {
    // Found trying it: the job BullMQ had dropped stayed running after "/cancel 4: Job 4 is
    // cancelled." (only a live worker's heartbeat acts on a cancel request).
    const dead = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
    expect(await db.trainingRuns.claimById(dead.id, 'dead', 1)).toBeDefined();
    await new Promise((r) => setTimeout(r, 10));
    expect(await db.trainingRuns.requestCancel(dead.id)).toMatchObject({
      status: 'cancelled',
      cancelRequested: true,
      leaseOwner: null,
    });
    // A job with a live lease is only asked to stop: its worker kills its process.
    const live = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
    expect(await db.trainingRuns.claimById(live.id, 'alive', 60_000)).toBeDefined();
    expect(await db.trainingRuns.requestCancel(live.id)).toMatchObject({
      status: 'running',
      cancelRequested: true,
      leaseOwner: 'alive',
    });
  });
});
