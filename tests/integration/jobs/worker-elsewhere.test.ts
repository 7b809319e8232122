/**
 * issue 14 follow-up: a trainer worker on another machine shares only the database with the bot.
 * The bot's core and a BullMQ worker run here with DIFFERENT data folders over one database (a
 * SQLite file outside both, or a PostgreSQL schema with TEST_DATABASE_URL); the worker's trained
 * folder is deleted before the bot looks (the bot could never see another machine's disk), so
 * the bot can serve, roll back and forward only from what the database holds, and a with=class
 * job's worker never sees the bot's image store.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { importLabelledFolder } from '../../../src/cli/commands/labels.ts';
import { loadConfig, type Config } from '../../../src/config.ts';
import { sqliteUrl } from '../../../src/db/client.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startBullWorker, type BullTrainerWorker } from '../../../src/jobs/bull.ts';
import {
  startTrainerRuntime,
  workerOptions,
  type TrainerRuntime,
} from '../../../src/jobs/trainer-runtime.ts';
import { startJobReporter } from '../../../src/jobs/reporter.ts';
import { readFolderFiles, versionDir } from '../../../src/jobs/version-store.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { loadModel } from '../../../src/ml/model-io.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { STUDENTS, STUDENT_PATTERN, writeClassFolder } from '../../fixtures/class-photos.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';
import {
  createTestDatabase,
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  type TestDatabase,
} from '../db/helpers.ts';
import { FIXTURE_SPEC } from './trainer-fixture.ts';
import { REDIS_AVAILABLE, REDIS_SKIP_MESSAGE, startRedis } from './redis-server.ts';

if (!REDIS_AVAILABLE) console.warn(REDIS_SKIP_MESSAGE);

const MODEL = 'lenet-mnist';
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The served model's softmax on a fixed input ([1, 28, 28, 1], values in [0, 1]). */
async function servedPrediction(registry: ModelRegistry): Promise<number[]> {
  return registry.use(MODEL, (l) =>
    Promise.resolve(
      tf.tidy(() => {
        const x = tf.linspace(0, 1, 784).reshape([1, 28, 28, 1]);
        return Array.from((l.model.predict(x) as tf.Tensor).dataSync());
      }),
    ),
  );
}

/** The same prediction from a folder loaded directly (the worker's own copy). */
async function folderPrediction(dir: string): Promise<number[]> {
  const model = await loadModel(dir);
  try {
    return tf.tidy(() => {
      const x = tf.linspace(0, 1, 784).reshape([1, 28, 28, 1]);
      return Array.from((model.predict(x) as tf.Tensor).dataSync());
    });
  } finally {
    model.dispose();
  }
}

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe.skipIf(!REDIS_AVAILABLE)(`a worker with its own DATA_DIR on ${provider}`, () => {
    let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
    let testDb: TestDatabase;
    let botDb: Database;
    let workerDb: Database;
    let registry: ModelRegistry;
    let trainer: TrainerRuntime;
    let worker: BullTrainerWorker;
    let root: string;
    let botDir: string;
    let workerDir: string;
    /** A copy of the worker's version 1 folder, taken before the worker's disk is "away". */
    let workerCopy: string;
    let workerFiles: Map<string, string>;
    const prefix = `test-elsewhere-${provider}-${process.pid}-${Date.now()}`;

    /** Waits for the job to end; it must have succeeded (a failure fails at once, with why). */
    const waitDone = async (id: number) => {
      const j = await vi.waitFor(
        async () => {
          const j = await trainer.training.get(id);
          if (!j || j.state === 'queued' || j.state === 'running') {
            throw new Error(`job ${id} is ${j?.state}`);
          }
          return j;
        },
        { timeout: 150_000, interval: 250 },
      );
      expect({ state: j.state, failure: j.failure }).toEqual({ state: 'succeeded', failure: null });
      return j;
    };

    beforeAll(async () => {
      await initBackend();
      redis = await startRedis();
      testDb = await createTestDatabase(provider);
      root = await mkdtemp(path.join(os.tmpdir(), 'worker-elsewhere-'));
      botDir = path.join(root, 'bot');
      workerDir = path.join(root, 'worker');
      workerCopy = path.join(root, 'worker-copy');
      await mkdir(botDir, { recursive: true });
      // The data set is on the worker's machine only.
      await writeBandedIdx(workerDir, 'mnist', { train: 1200, test: 100 });
      const databaseUrl =
        testDb.target.provider === 'sqlite'
          ? sqliteUrl(testDb.target.file)
          : (testDb.config.DATABASE_URL ?? '');
      const common = {
        MODELS_DIR,
        DATABASE_URL: databaseUrl,
        REDIS_URL: redis.url,
        TRAINER_EMBEDDED: 'false',
        CLASS_MIN_PHOTOS: '40',
      };
      const botConfig: Config = loadConfig({ ...common, DATA_DIR: botDir });
      const workerConfig: Config = loadConfig({ ...common, DATA_DIR: workerDir });
      botDb = await openDatabase(botConfig);
      workerDb = await openDatabase(workerConfig);
      registry = new ModelRegistry(MODELS_DIR);
      const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
      // The class's photos are stored by the bot, in the bot's image store.
      await writeClassFolder(path.join(root, 'class'), STUDENTS.slice(0, 5));
      const imported = await importLabelledFolder(
        botDb,
        await registry.get(MODEL),
        path.join(root, 'class'),
        {
          studentPattern: new RegExp(STUDENT_PATTERN),
          limits: { maxBytes: 20_000_000, maxPixels: 16_000_000 },
        },
      );
      expect(imported.imported).toBe(50);
      // Slow polls: the test syncs the served version itself, once the worker's disk is "away".
      trainer = await startTrainerRuntime(botConfig, botDb, registry, logger, {
        pollMs: 600_000,
        bullPrefix: prefix,
      });
      worker = await startBullWorker({
        ...workerOptions(workerConfig, workerDb, logger),
        specDefaults: FIXTURE_SPEC,
        redisUrl: redis.url,
        prefix,
      });
    }, 180_000);

    afterAll(async () => {
      await worker?.close();
      await trainer?.close();
      await registry?.dispose();
      await workerDb?.close();
      await botDb?.close();
      await redis?.stop();
      await testDb?.cleanup();
      if (root) await rm(root, { recursive: true, force: true });
    });

    it('serves the version the worker trained, from the database alone', async () => {
      await servedPrediction(registry); // version 0 loaded: the tensors of one LeNet
      const tensorsBefore = tf.memory().numTensors;
      const { job } = await trainer.training.enqueue(
        { model: MODEL, epochs: 1, force: true },
        'cli',
      );
      await trainer.training.watch(job.id, {
        platform: 'telegram',
        chatId: '-100',
        messageId: '7',
        lang: 'en',
      });
      const done = await waitDone(job.id);
      expect(done.version).toBe('1');
      expect(done.result?.promoted).toBe(true);
      // The worker's machine: its folder, and the same files stored with the row.
      const trained = versionDir({ modelsDir: MODELS_DIR, dataDir: workerDir }, MODEL, '1');
      const files = await readFolderFiles(trained);
      expect(files.map((f) => f.name)).toEqual(
        expect.arrayContaining(['model.json', 'meta.json', 'history.json', 'history.png']),
      );
      workerFiles = new Map(files.map((f) => [f.name, sha256(f.bytes)]));
      const stored = await botDb.modelVersions.storedFiles(MODEL, '1');
      expect(new Map(stored.map((f) => [f.name, f.sha256]))).toEqual(workerFiles);
      expect(stored.every((f) => f.size > 0)).toBe(true);
      await cp(trained, workerCopy, { recursive: true });
      // The bot cannot see the worker's disk.
      await rm(path.join(workerDir, 'models'), { recursive: true, force: true });

      await trainer.watcher.sync();
      expect(registry.servedVersion(MODEL)).toBe('1');
      const loaded = await registry.get(MODEL);
      expect(loaded.dir).toBe(path.join(botDir, 'models', MODEL, '1'));
      const local = await readFolderFiles(loaded.dir);
      expect(new Map(local.map((f) => [f.name, sha256(f.bytes)]))).toEqual(workerFiles);
      const served = await servedPrediction(registry);
      const expected = await folderPrediction(workerCopy);
      expect(served).toHaveLength(10);
      served.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
      expect(tf.memory().numTensors).toBe(tensorsBefore);

      // The promotion notification: the final text, then the curves of the version just written.
      const sent: { chatId: string; png: Uint8Array; caption: string; replyTo?: string }[] = [];
      const edits: string[] = [];
      const reporter = startJobReporter({
        db: botDb,
        folders: { modelsDir: MODELS_DIR, dataDir: botDir },
        messengers: [
          {
            platform: 'telegram',
            editText: (_chat, _message, text) => {
              edits.push(text);
              return Promise.resolve();
            },
            sendImage: (chatId, png, caption, replyTo) => {
              sent.push({ chatId, png, caption, ...(replyTo === undefined ? {} : { replyTo }) });
              return Promise.resolve();
            },
          },
        ],
        logger: pino({ level: 'silent' }),
        pollMs: 600_000,
      });
      await reporter.tick();
      await reporter.stop();
      expect(edits.at(-1)).toMatch(/^Job \d+ done: lenet-mnist version 1 /);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({ chatId: '-100', replyTo: '7' });
      expect(sha256(sent[0]!.png)).toBe(workerFiles.get('history.png'));
    }, 200_000);

    it('rolls back to 0 and forward to 1 again, writing a deleted or corrupted copy anew', async () => {
      const tensorsBefore = tf.memory().numTensors;
      const v1 = path.join(botDir, 'models', MODEL, '1');
      const shipped = await folderPrediction(path.join(MODELS_DIR, MODEL));
      const trained = await folderPrediction(workerCopy);

      expect(await trainer.training.rollback(MODEL, '0')).toEqual({ from: '1', to: '0' });
      await trainer.watcher.sync();
      expect(registry.servedVersion(MODEL)).toBe('0');
      (await servedPrediction(registry)).forEach((p, i) => expect(p).toBeCloseTo(shipped[i]!, 6));

      // The local copy is deleted: rolling forward writes it again from the database.
      await rm(v1, { recursive: true, force: true });
      expect(await trainer.training.rollback(MODEL, '1')).toEqual({ from: '0', to: '1' });
      await trainer.watcher.sync();
      expect(registry.servedVersion(MODEL)).toBe('1');
      (await servedPrediction(registry)).forEach((p, i) => expect(p).toBeCloseTo(trained[i]!, 6));

      // Back to 0, then a weight shard of the local copy is damaged (one byte flipped).
      await trainer.training.rollback(MODEL, '0');
      await trainer.watcher.sync();
      const shard = (await readFolderFiles(v1)).find((f) => f.name.endsWith('.bin'))!;
      const damaged = Buffer.from(shard.bytes);
      damaged[damaged.length >> 1] = damaged[damaged.length >> 1]! ^ 0xff;
      await writeFile(path.join(v1, shard.name), damaged);
      expect(sha256(await readFile(path.join(v1, shard.name)))).not.toBe(
        workerFiles.get(shard.name),
      );
      await trainer.training.rollback(MODEL, '1');
      await trainer.watcher.sync();
      expect(registry.servedVersion(MODEL)).toBe('1');
      expect(sha256(await readFile(path.join(v1, shard.name)))).toBe(workerFiles.get(shard.name));
      (await servedPrediction(registry)).forEach((p, i) => expect(p).toBeCloseTo(trained[i]!, 6));
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }, 120_000);

    it("runs a with=class job on the worker, which reads the class's photos from the database", async () => {
      const { job } = await trainer.training.enqueue(
        { model: MODEL, with: 'class', epochs: 1 },
        'cli',
      );
      const done = await waitDone(job.id);
      expect(done.result?.classFinetune).toMatchObject({ parentVersion: '1' });
      // Every one of the 50 photos the bot stored reached the worker, which has no image store
      // (used, or refused by the preprocessing: none missing).
      const row = await botDb.modelVersions.get(MODEL, done.version!);
      const c = row?.metrics?.classFinetune as {
        photos: number;
        trainPhotos: number;
        heldOutPhotos: number;
        skipped: number;
      };
      expect(c.photos + c.skipped).toBe(50);
      expect(c.photos).toBeGreaterThanOrEqual(40);
      expect(c.trainPhotos + c.heldOutPhotos).toBe(c.photos);
      // The served version 1 was fine-tuned: the worker wrote it from the database again.
      const base = await readFolderFiles(path.join(workerDir, 'models', MODEL, '1'));
      expect(new Map(base.map((f) => [f.name, sha256(f.bytes)]))).toEqual(workerFiles);
      // The job ended: its copies of the photos are gone.
      expect(await botDb.trainingRuns.photos(job.id)).toEqual([]);
      expect(
        Number((await testDb.query('SELECT COUNT(*) AS n FROM training_run_photos'))[0]?.n ?? -1),
      ).toBe(0);
    }, 200_000);
  });
}
