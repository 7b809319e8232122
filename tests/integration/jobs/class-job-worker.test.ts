/**
 * issue 16: `with=class` jobs in the embedded trainer worker, against a real SQLite database and
 * real child processes: a killed job resumes from its epoch checkpoint, cancel kills it, and a
 * class whose photos the preprocessing mostly refuses fails with the count needed.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPrismaPersistence } from '../../../src/adapters/persistence/prisma-persistence.ts';
import { importLabelledFolder } from '../../../src/cli/commands/labels.ts';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { createDbWorker } from '../../../src/jobs/db-worker.ts';
import type { JobProgress } from '../../../src/jobs/protocol.ts';
import { checkpointDir } from '../../../src/jobs/version-store.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { STUDENTS, STUDENT_PATTERN, writeClassFolder } from '../../fixtures/class-photos.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';

let root: string;
let db: Database;
let registry: ModelRegistry;
const logger = pino({ level: 'silent' });
const limits = { maxBytes: 20_000_000, maxPixels: 16_000_000 };
const folders = () => ({
  modelsDir: path.join(PROJECT_ROOT, 'models'),
  dataDir: path.join(root, 'data'),
});

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(path.join(os.tmpdir(), 'class-worker-'));
  await writeBandedIdx(path.join(root, 'data'), 'mnist', { train: 2400, test: 60 });
  await writeClassFolder(path.join(root, 'class'), STUDENTS.slice(0, 5));
  db = await openDatabase({ DATA_DIR: path.join(root, 'data') });
  registry = new ModelRegistry(path.join(PROJECT_ROOT, 'models'));
  const loaded = await registry.get('lenet-mnist');
  const summary = await importLabelledFolder(db, loaded, path.join(root, 'class'), {
    studentPattern: new RegExp(STUDENT_PATTERN),
    limits,
  });
  expect(summary.imported).toBe(50);
}, 120_000);
afterAll(async () => {
  await db.close();
  await registry.dispose();
  await rm(root, { recursive: true, force: true });
});

function worker(extra: Partial<Parameters<typeof createDbWorker>[0]> = {}) {
  return createDbWorker({
    trainingRuns: db.trainingRuns,
    modelVersions: db.modelVersions,
    folders: folders(),
    logger,
    leaseMs: 3000,
    maxAttempts: 2,
    pollMs: 200,
    specDefaults: { calibrate: false, batchSize: 32, seed: 5 },
    classData: createPrismaPersistence(db).classData,
    imageLimits: limits,
    classMinPhotos: 40,
    ...extra,
  });
}

const finished = (id: number, state: string) =>
  vi.waitFor(
    async () => {
      const r = await db.trainingRuns.get(id);
      if (r?.status !== state) throw new Error(`job is ${r?.status}: ${r?.error}`);
      return r;
    },
    { timeout: 180_000, interval: 200 },
  );

describe('with=class jobs in the trainer worker', () => {
  it('a killed class job resumes from its epoch checkpoint and finishes with every epoch', async () => {
    const run = await db.trainingRuns.create({
      modelId: 'lenet-mnist',
      params: { with: 'class', epochs: 3, requester: 'cli' },
    });
    const pids: number[] = [];
    const firstEpochs: number[] = [];
    const w = worker({
      onSpawn: (_job, pid) => pids.push(pid),
      onProgress: (p: JobProgress) => {
        if (firstEpochs.length < pids.length) firstEpochs.push(p.epoch);
      },
    });
    try {
      const state = path.join(checkpointDir(folders(), run.id), 'state.json');
      await vi.waitFor(() => expect(existsSync(state)).toBe(true), {
        timeout: 120_000,
        interval: 100,
      });
      process.kill(pids[0]!, 'SIGKILL');
      const done = await finished(run.id, 'succeeded');
      expect(pids).toHaveLength(2);
      expect(done.attempts).toBe(2);
      // The second process began after the checkpoint's epoch, not at epoch 1.
      expect(firstEpochs[0]).toBe(1);
      expect(firstEpochs[1]).toBeGreaterThanOrEqual(2);
      expect((done.metrics?.history as unknown[]).length).toBe(3);
      expect(done.metrics).toMatchObject({ classFinetune: { photos: 50, parentVersion: '0' } });
      // The worker removes the checkpoint just after recording the job's success.
      await vi.waitFor(() => expect(existsSync(checkpointDir(folders(), run.id))).toBe(false), {
        timeout: 5000,
      });
    } finally {
      await w.close();
    }
  }, 240_000);

  it('cancel kills a running class job; the served version stays', async () => {
    const served = (await db.modelVersions.served()).get('lenet-mnist');
    const run = await db.trainingRuns.create({
      modelId: 'lenet-mnist',
      params: { with: 'class', epochs: 20, requester: 'cli' },
    });
    const w = worker();
    try {
      await vi.waitFor(
        async () => {
          const r = await db.trainingRuns.get(run.id);
          if (!r?.progress) throw new Error('no progress yet');
        },
        { timeout: 120_000, interval: 100 },
      );
      await db.trainingRuns.requestCancel(run.id);
      const t0 = Date.now();
      await finished(run.id, 'cancelled');
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await db.modelVersions.served()).get('lenet-mnist')).toBe(served);
    } finally {
      await w.close();
    }
  }, 240_000);

  it('fails with the count needed when the preprocessing leaves too few photos', async () => {
    // Upload limits lowered since the import: the 480x480 photos are refused as too large.
    const run = await db.trainingRuns.create({
      modelId: 'lenet-mnist',
      params: { with: 'class', epochs: 1, requester: 'cli' },
    });
    const w = worker({ imageLimits: { maxBytes: 20_000_000, maxPixels: 100_000 } });
    try {
      const failed = await finished(run.id, 'failed');
      expect(failed.error).toBe('classdata: 0 usable labelled photos, 40 needed');
      expect(failed.metrics).toMatchObject({
        reason: 'classdata',
        params: { count: 0, needed: 40, missing: 40 },
      });
    } finally {
      await w.close();
    }
  }, 120_000);
});
