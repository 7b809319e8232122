/**
 * The embedded trainer worker against a real SQLite database and real child processes running
 * `runTrainingJob` on the banded MNIST fixture.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { createDbWorker } from '../../../src/jobs/db-worker.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';

let root: string;
let db: Database;
const logger = pino({ level: 'silent' });
const specDefaults = {
  augment: false,
  outliers: false,
  calibrate: false,
  workers: 1,
  validationSplit: 0.25,
  batchSize: 30,
  seed: 7,
} as const;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'db-worker-'));
  await writeBandedIdx(path.join(root, 'data'), 'mnist', { train: 240, test: 60 });
  db = await openDatabase({ DATA_DIR: path.join(root, 'data') });
});
afterAll(async () => {
  await db.close();
  await rm(root, { recursive: true, force: true });
});

function worker(extra: Partial<Parameters<typeof createDbWorker>[0]> = {}) {
  return createDbWorker({
    trainingRuns: db.trainingRuns,
    modelVersions: db.modelVersions,
    folders: { modelsDir: path.join(PROJECT_ROOT, 'models'), dataDir: path.join(root, 'data') },
    logger,
    leaseMs: 3000,
    maxAttempts: 2,
    pollMs: 200,
    specDefaults,
    ...extra,
  });
}

describe('the database-leased trainer worker', () => {
  it('runs a job in a child process and records version 1 with lineage', async () => {
    const run = await db.trainingRuns.create({
      modelId: 'lenet-mnist',
      params: { epochs: 1, force: true, requester: 'telegram:1' },
    });
    const pids: number[] = [];
    const w = worker({ onSpawn: (_job, pid) => pids.push(pid) });
    try {
      const done = await vi.waitFor(
        async () => {
          const r = await db.trainingRuns.get(run.id);
          if (r?.status !== 'succeeded') throw new Error(`job is ${r?.status}: ${r?.error}`);
          return r;
        },
        { timeout: 120_000, interval: 250 },
      );
      expect(pids).toHaveLength(1);
      expect(pids[0]).not.toBe(process.pid);
      expect(done.version).toBe('1');
      expect(done.attempts).toBe(1);
      expect(done.backend).toMatch(/wasm|cpu|tensorflow/);
      expect(done.metrics).toMatchObject({ version: '1', servedVersion: '0', promoted: true });
      const v1 = await db.modelVersions.get('lenet-mnist', '1');
      expect(v1).toMatchObject({ jobId: run.id, parentVersion: '0', active: true });
      expect(v1?.datasetFingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(existsSync(path.join(v1!.path, 'model.json'))).toBe(true);
      expect(existsSync(path.join(v1!.path, 'history.png'))).toBe(true);
      // Nothing of the job is left in DATA_DIR/jobs/ (its checkpoint and checkpoint curves),
      // removed just after the job's row is marked succeeded.
      await vi.waitFor(
        () => expect(existsSync(path.join(root, 'data', 'jobs', String(run.id)))).toBe(false),
        { timeout: 5000, interval: 50 },
      );
      expect((await db.modelVersions.served()).get('lenet-mnist')).toBe('1');
    } finally {
      await w.close();
    }
  }, 150_000);

  it('cancel kills a running job within seconds; the served version stays', async () => {
    const served = (await db.modelVersions.served()).get('lenet-mnist');
    const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 30 } });
    const pids: number[] = [];
    const w = worker({ onSpawn: (_job, pid) => pids.push(pid) });
    try {
      await vi.waitFor(
        async () => {
          const r = await db.trainingRuns.get(run.id);
          if (!r?.progress) throw new Error('no progress yet');
        },
        { timeout: 60_000, interval: 100 },
      );
      const asked = Date.now();
      await db.trainingRuns.requestCancel(run.id);
      await vi.waitFor(
        async () => {
          if ((await db.trainingRuns.get(run.id))?.status !== 'cancelled') throw new Error('still');
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(Date.now() - asked).toBeLessThan(5000);
      // The child is gone (reaped within moments of the kill).
      await vi.waitFor(() => expect(() => process.kill(pids[0]!, 0)).toThrow(), {
        timeout: 3000,
        interval: 50,
      });
      expect((await db.modelVersions.served()).get('lenet-mnist')).toBe(served);
    } finally {
      await w.close();
    }
  }, 90_000);

  it('a killed job process is resumed; after the last try it fails with the reason', async () => {
    const served = (await db.modelVersions.served()).get('lenet-mnist');
    const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 30 } });
    const pids: number[] = [];
    const w = worker({
      onSpawn: (_job, pid) => {
        pids.push(pid);
      },
    });
    try {
      for (let i = 0; i < 2; i++) {
        await vi.waitFor(
          async () => {
            const r = await db.trainingRuns.get(run.id);
            if (pids.length <= i || !r?.progress || r.attempts !== i + 1) throw new Error('wait');
          },
          { timeout: 60_000, interval: 100 },
        );
        process.kill(pids[i]!, 'SIGKILL');
      }
      const failed = await vi.waitFor(
        async () => {
          const r = await db.trainingRuns.get(run.id);
          if (r?.status !== 'failed') throw new Error(`job is ${r?.status}`);
          return r;
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(pids).toHaveLength(2);
      expect(failed.attempts).toBe(2);
      expect(failed.error).toMatch(
        /^worker: the job's process ended without a result \(signal SIGKILL\)/,
      );
      expect(failed.metrics).toMatchObject({ reason: 'worker' });
      expect((await db.modelVersions.served()).get('lenet-mnist')).toBe(served);
    } finally {
      await w.close();
    }
  }, 150_000);

  it('a worker that dies holding a job leaves its lease to expire; another worker resumes it', async () => {
    const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: { epochs: 1 } });
    // A worker that claimed the job and vanished (no heartbeats).
    const claimed = await db.trainingRuns.claim('dead-worker', 500, 3);
    expect(claimed.run?.id).toBe(run.id);
    await new Promise((r) => setTimeout(r, 600));
    const w = worker({ owner: 'second-worker' });
    try {
      const done = await vi.waitFor(
        async () => {
          const r = await db.trainingRuns.get(run.id);
          if (r?.status !== 'succeeded') throw new Error(`job is ${r?.status}`);
          return r;
        },
        { timeout: 120_000, interval: 250 },
      );
      expect(done.attempts).toBe(2);
    } finally {
      await w.close();
    }
  }, 150_000);
});
