/**
 * issue 14 follow-up: what a worker on another machine shares with the bot through the database:
 * a version's files (`model_version_files`, written back by `materializeVersion`) and a
 * with=class job's photos (`training_run_photos`, gone when the job ends or the photo expires).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import {
  addVersion,
  materializeVersion,
  readFolderFiles,
  stagingDir,
  type VersionFolders,
} from '../../../src/jobs/version-store.ts';
import { pino } from 'pino';
import { UserError } from '../../../src/errors.ts';
import { watchServedVersions } from '../../../src/jobs/served-watcher.ts';
import { exists } from '../../../src/io/files.ts';
import { createTrainingService } from '../../../src/jobs/training-service.ts';
import {
  countOf,
  createTestDatabase,
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  type TestDatabase,
} from './helpers.ts';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const MODEL = 'lenet-mnist';

/** A version folder as a job leaves it: a few files, binary bytes. */
async function writeStaging(dir: string, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.json'), JSON.stringify({ seed }));
  await writeFile(
    path.join(dir, 'group1-shard1of1.bin'),
    Uint8Array.from({ length: 4096 }, (_, i) => (i * 31 + seed) & 0xff),
  );
  await writeFile(path.join(dir, 'meta.json'), `{"id":"${MODEL}"}`);
  await writeFile(path.join(dir, 'history.json'), '[]');
}

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`versions and class photos in the database on ${provider}`, () => {
    let testDb: TestDatabase;
    let db: Database;
    let root: string;
    /** The worker's machine and the bot's: one database, two data folders. */
    let workerFolders: VersionFolders;
    let botFolders: VersionFolders;

    beforeEach(async () => {
      testDb = await createTestDatabase(provider);
      db = await openDatabase(testDb.config);
      root = await mkdtemp(path.join(os.tmpdir(), 'versions-in-db-'));
      workerFolders = { modelsDir: path.join(root, 'models'), dataDir: path.join(root, 'worker') };
      botFolders = { modelsDir: path.join(root, 'models'), dataDir: path.join(root, 'bot') };
    });

    afterEach(async () => {
      await db.close();
      await testDb.cleanup();
      await rm(root, { recursive: true, force: true });
    });

    /** A job's version 1 made on the worker's machine, as `addVersion` does it. */
    async function trainedOnWorker(seed = 1): Promise<Map<string, string>> {
      const staging = stagingDir(workerFolders, MODEL, 1);
      await writeStaging(staging, seed);
      const files = await readFolderFiles(staging);
      await addVersion(db.modelVersions, workerFolders, {
        jobId: 1,
        modelId: MODEL,
        stagingDir: staging,
        testAccuracy: 0.9,
        force: true,
        params: {},
        metrics: {},
        datasetFingerprint: 'f'.repeat(64),
        createdBy: 'cli',
      });
      return new Map(files.map((f) => [f.name, sha256(f.bytes)]));
    }

    it('stores every file of a new version with its row: bytes, SHA-256 and size', async () => {
      const expected = await trainedOnWorker();
      expect([...expected.keys()]).toEqual([
        'group1-shard1of1.bin',
        'history.json',
        'meta.json',
        'model.json',
      ]);
      const stored = await db.modelVersions.storedFiles(MODEL, '1');
      expect(new Map(stored.map((f) => [f.name, f.sha256]))).toEqual(expected);
      expect(stored.find((f) => f.name === 'group1-shard1of1.bin')?.size).toBe(4096);
      const rows = await testDb.query(
        'SELECT COUNT(*) AS n FROM model_version_files f JOIN model_versions v ON v.id = f.model_version_id WHERE v.version = ?',
        ['1'],
      );
      expect(countOf(rows)).toBe(4);
    });

    it('gives two workers on two machines finishing at once two versions, neither replacing the other', async () => {
      const other: VersionFolders = { ...workerFolders, dataDir: path.join(root, 'worker2') };
      const jobs = [
        { folders: workerFolders, jobId: 1, seed: 1 },
        { folders: other, jobId: 2, seed: 2 },
      ];
      const expected = new Map<number, Map<string, string>>();
      for (const j of jobs) {
        const staging = stagingDir(j.folders, MODEL, j.jobId);
        await writeStaging(staging, j.seed);
        const files = await readFolderFiles(staging);
        expected.set(j.jobId, new Map(files.map((f) => [f.name, sha256(f.bytes)])));
      }
      const decisions = await Promise.all(
        jobs.map((j) =>
          addVersion(db.modelVersions, j.folders, {
            jobId: j.jobId,
            modelId: MODEL,
            stagingDir: stagingDir(j.folders, MODEL, j.jobId),
            testAccuracy: 0.9,
            force: false,
            params: {},
            metrics: {},
            datasetFingerprint: 'f'.repeat(64),
            createdBy: 'cli',
          }),
        ),
      );
      expect(decisions.map((d) => d.version).sort()).toEqual(['1', '2']);
      for (const [i, j] of jobs.entries()) {
        const version = decisions[i]!.version;
        const row = await db.modelVersions.get(MODEL, version);
        expect(row?.jobId).toBe(j.jobId);
        expect(row?.path).toBe(path.join(j.folders.dataDir, 'models', MODEL, version));
        const stored = await db.modelVersions.storedFiles(MODEL, version);
        expect(new Map(stored.map((f) => [f.name, f.sha256]))).toEqual(expected.get(j.jobId));
        const onDisk = await readFolderFiles(row!.path);
        expect(new Map(onDisk.map((f) => [f.name, sha256(f.bytes)]))).toEqual(
          expected.get(j.jobId),
        );
      }
    });

    it('serves a promoted version once its folder can be written, after a failure of the moment', async () => {
      await trainedOnWorker();
      // The bot's models folder cannot be made for a moment (here: a file stands in its way).
      await mkdir(botFolders.dataDir, { recursive: true });
      await writeFile(path.join(botFolders.dataDir, 'models'), 'not a folder');
      const servedNow = new Map<string, string>();
      const loads: string[] = [];
      const registry = {
        servedVersion: (id: string) => servedNow.get(id) ?? '0',
        serve: (id: string, version: string, dir?: string) => {
          loads.push(`${id}@${version}:${dir ?? 'shipped'}`);
          servedNow.set(id, version);
          return Promise.resolve();
        },
      };
      const intervalMs = 20;
      const watcher = watchServedVersions(
        db.modelVersions,
        registry,
        pino({ level: 'silent' }),
        intervalMs,
        botFolders,
      );
      try {
        await watcher.sync();
        expect(loads).toEqual([]);
        await rm(path.join(botFolders.dataDir, 'models'));
        // A few polls later the version is written and served, without the row changing.
        const deadline = Date.now() + 5000;
        while (loads.length === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, intervalMs));
          await watcher.sync();
        }
        const dir = path.join(botFolders.dataDir, 'models', MODEL, '1');
        expect(loads).toEqual([`${MODEL}@1:${dir}`]);
        expect(await exists(path.join(dir, 'model.json'))).toBe(true);
      } finally {
        await watcher.stop();
      }
    });

    it('refuses to register a taken version number exclusively, changing nothing', async () => {
      const expected = await trainedOnWorker();
      await expect(
        db.modelVersions.register({
          modelId: MODEL,
          version: '1',
          path: '/elsewhere',
          exclusive: true,
          files: [{ name: 'model.json', bytes: new Uint8Array([1, 2, 3]) }],
        }),
      ).rejects.toMatchObject({ name: 'DatabaseError', code: 'conflict' });
      const stored = await db.modelVersions.storedFiles(MODEL, '1');
      expect(new Map(stored.map((f) => [f.name, f.sha256]))).toEqual(expected);
      expect((await db.modelVersions.get(MODEL, '1'))?.path).toBe(
        path.join(workerFolders.dataDir, 'models', MODEL, '1'),
      );
    });

    it('writes the folder on another machine from the database, then reuses it, and rewrites a damaged copy', async () => {
      const expected = await trainedOnWorker();
      const first = await materializeVersion(db.modelVersions, botFolders, MODEL, '1');
      expect(first).toEqual({
        dir: path.join(botFolders.dataDir, 'models', MODEL, '1'),
        source: 'database',
      });
      const written = await readFolderFiles(first.dir);
      expect(new Map(written.map((f) => [f.name, sha256(f.bytes)]))).toEqual(expected);
      expect(await materializeVersion(db.modelVersions, botFolders, MODEL, '1')).toEqual({
        ...first,
        source: 'local',
      });
      // A truncated shard and a missing file: both written again.
      await writeFile(path.join(first.dir, 'group1-shard1of1.bin'), Buffer.alloc(10));
      await rm(path.join(first.dir, 'history.json'));
      expect((await materializeVersion(db.modelVersions, botFolders, MODEL, '1')).source).toBe(
        'database',
      );
      const again = await readFolderFiles(first.dir);
      expect(new Map(again.map((f) => [f.name, sha256(f.bytes)]))).toEqual(expected);
      // No temporary or stale folder is left beside it.
      expect(await readdir(path.join(botFolders.dataDir, 'models', MODEL))).toEqual(['1']);
    });

    it('refuses stored bytes that do not match their SHA-256, leaving the local folder alone', async () => {
      await trainedOnWorker();
      await testDb.query("UPDATE model_version_files SET sha256 = ? WHERE name = 'model.json'", [
        '0'.repeat(64),
      ]);
      await expect(materializeVersion(db.modelVersions, botFolders, MODEL, '1')).rejects.toThrow(
        /stored model.json does not match its SHA-256/,
      );
      expect(await exists(path.join(botFolders.dataDir, 'models', MODEL, '1'))).toBe(false);
    });

    it('refuses a stored name that would leave the folder', async () => {
      await db.modelVersions.register({
        modelId: MODEL,
        version: '2',
        path: '/elsewhere',
        files: [{ name: '../escaped.txt', bytes: new Uint8Array([1]) }],
      });
      await expect(materializeVersion(db.modelVersions, botFolders, MODEL, '2')).rejects.toThrow(
        /unsafe file name/,
      );
      expect(await exists(path.join(botFolders.dataDir, 'models', MODEL, 'escaped.txt'))).toBe(
        false,
      );
    });

    it('keeps old rows without stored files working from their path, and version 0 from models/', async () => {
      const old = path.join(root, 'old-version');
      await writeStaging(old, 3);
      await db.modelVersions.register({ modelId: MODEL, version: '5', path: old });
      expect(await materializeVersion(db.modelVersions, botFolders, MODEL, '5')).toEqual({
        dir: old,
        source: 'path',
      });
      expect(await materializeVersion(db.modelVersions, botFolders, MODEL, '0')).toEqual({
        dir: path.join(botFolders.modelsDir, MODEL),
        source: 'shipped',
      });
      await rm(old, { recursive: true });
      await expect(materializeVersion(db.modelVersions, botFolders, MODEL, '5')).rejects.toThrow(
        /is missing and no files are stored/,
      );
    });

    it('refuses a rollback to a version whose files are nowhere, and serves the one it can write', async () => {
      await trainedOnWorker();
      const old = path.join(root, 'gone');
      await db.modelVersions.register({ modelId: MODEL, version: '2', path: old });
      const training = createTrainingService({
        db,
        folders: botFolders,
        limits: { maxEpochs: 3, maxBatch: 64, jobsPerInstructor: 1 },
      });
      await db.modelVersions.activate(MODEL, '1');
      const refused = await training.rollback(MODEL, '2').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(UserError);
      expect((refused as UserError).id).toBe('version.unavailable');
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('1');
      // Version 1 is in the database only (the worker's disk is away): written here, then served.
      await rm(path.join(workerFolders.dataDir, 'models'), { recursive: true });
      await db.modelVersions.register({
        modelId: MODEL,
        version: '0',
        path: path.join(botFolders.modelsDir, MODEL),
      });
      await db.modelVersions.activate(MODEL, '0');
      expect(await training.rollback(MODEL, '1')).toEqual({ from: '0', to: '1' });
      expect(await exists(path.join(botFolders.dataDir, 'models', MODEL, '1', 'model.json'))).toBe(
        true,
      );
    });

    it('rolls back from the version served now when a promotion lands while the folder is written', async () => {
      // Versions 1 and 2 trained on the worker, in the database only for the bot; 2 served.
      for (const jobId of [1, 2]) {
        const staging = stagingDir(workerFolders, MODEL, jobId);
        await writeStaging(staging, jobId);
        await addVersion(db.modelVersions, workerFolders, {
          jobId,
          modelId: MODEL,
          stagingDir: staging,
          testAccuracy: 0.9,
          force: true,
          params: {},
          metrics: {},
          datasetFingerprint: 'f'.repeat(64),
          createdBy: 'cli',
        });
      }
      await db.modelVersions.register({ modelId: MODEL, version: '3', path: '/never-read' });
      // A worker promotes version 3 while the bot reads version 1's files from the database.
      let promoted = false;
      const modelVersions = {
        ...db.modelVersions,
        readFiles: async (id: string, v: string) => {
          if (!promoted) {
            promoted = true;
            await db.modelVersions.activate(MODEL, '3');
          }
          return db.modelVersions.readFiles(id, v);
        },
      };
      const training = createTrainingService({
        db: { ...db, modelVersions },
        folders: botFolders,
        limits: { maxEpochs: 3, maxBatch: 64, jobsPerInstructor: 1 },
      });
      // "Back one" meant 2 -> 1 when asked; with 3 served by then it is 3 -> 2, not 3 -> 1.
      expect(await training.rollback(MODEL)).toEqual({ from: '3', to: '2' });
      expect(promoted).toBe(true);
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('2');
    });

    it('moves the served alias only from the version expected, when asked to', async () => {
      await db.modelVersions.register({ modelId: MODEL, version: '1', path: '/p1' });
      await db.modelVersions.register({ modelId: MODEL, version: '2', path: '/p2' });
      // Nothing promoted yet counts as the shipped version 0 being served.
      await db.modelVersions.activate(MODEL, '2', { ifServed: '0' });
      await expect(db.modelVersions.activate(MODEL, '1', { ifServed: '0' })).rejects.toMatchObject({
        code: 'conflict',
      });
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('2');
      await db.modelVersions.activate(MODEL, '1', { ifServed: '2' });
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('1');
    });

    it('prunes the photo copies a run kept when its process stopped right after it ended', async () => {
      const user = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '8' });
      const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 7) & 0xff);
      const submission = await db.submissions.recordSuccess({
        userId: user.id,
        command: 'predict',
        image: { sha256: sha256(bytes), path: 'images/y/1.png', bytes: 64 },
        model: { id: MODEL, version: '0' },
        predictedClass: '3',
        confidence: 0.99,
        topK: [],
      });
      const photo = { submissionId: submission.id, label: '3', student: 'telegram:8', bytes };
      const ended = await db.trainingRuns.create({ modelId: MODEL, params: {}, photos: [photo] });
      const waiting = await db.trainingRuns.create({ modelId: MODEL, params: {}, photos: [photo] });
      // The run's status written, the process gone before its photos were deleted.
      await testDb.query("UPDATE training_runs SET status = 'succeeded' WHERE id = ?", [ended.id]);
      expect(await db.trainingRuns.photos(ended.id)).toHaveLength(1);
      // The photo itself is recent: nothing expires, yet the ended run's copy goes.
      const pruned = await db.imageRetention.prune({ olderThanDays: 30 });
      expect(pruned.images).toBe(0);
      expect(await db.trainingRuns.photos(ended.id)).toEqual([]);
      expect(await db.trainingRuns.photos(waiting.id)).toHaveLength(1);
    });

    it("attaches a class job's photos to its row and drops them when the job ends, whichever way", async () => {
      const photo = (n: number) => ({
        submissionId: 0,
        label: String(n % 10),
        student: `telegram:${n}`,
        bytes: Uint8Array.from({ length: 64 }, (_, i) => (i + n) & 0xff),
      });
      const user = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '7' });
      const submissions = [];
      for (let n = 0; n < 3; n++) {
        const p = photo(n);
        submissions.push(
          await db.submissions.recordSuccess({
            userId: user.id,
            command: 'predict',
            image: { sha256: sha256(p.bytes), path: `images/x/${n}.png`, bytes: 64 },
            model: { id: MODEL, version: '0' },
            predictedClass: p.label,
            confidence: 0.99,
            topK: [],
          }),
        );
      }
      const photos = submissions.map((s, n) => ({ ...photo(n), submissionId: s.id }));
      const make = (attached = photos) =>
        db.trainingRuns.create({ modelId: MODEL, params: { with: 'class' }, photos: attached });

      const failed = await make();
      const read = await db.trainingRuns.photos(failed.id);
      expect(read.map((p) => [p.submissionId, p.label, p.student])).toEqual(
        photos.map((p) => [p.submissionId, p.label, p.student]),
      );
      expect(read.map((p) => Buffer.from(p.bytes))).toEqual(
        photos.map((p) => Buffer.from(p.bytes)),
      );
      await db.trainingRuns.markFailed(failed.id, 'other: test');
      expect(await db.trainingRuns.photos(failed.id)).toEqual([]);

      const cancelled = await make();
      await db.trainingRuns.requestCancel(cancelled.id);
      expect(await db.trainingRuns.photos(cancelled.id)).toEqual([]);

      const succeeded = await make();
      await db.trainingRuns.claimById(succeeded.id, 'w', 60_000);
      await db.trainingRuns.finishSucceeded(succeeded.id, 'w', {}, '1');
      expect(await db.trainingRuns.photos(succeeded.id)).toEqual([]);

      // A deleted submission (a student's photo taken out of the database) takes its copy along.
      const deleting = await make();
      await testDb.query('DELETE FROM submissions WHERE id = ?', [submissions[0]!.id]);
      expect((await db.trainingRuns.photos(deleting.id)).map((p) => p.submissionId)).toEqual([
        submissions[1]!.id,
        submissions[2]!.id,
      ]);
      await db.trainingRuns.markCancelled(deleting.id);

      // A queued job's copies expire with the photos (retention), as the image files do.
      const queued = await make(photos.slice(1));
      const pruned = await db.imageRetention.prune({
        olderThanDays: 1,
        now: new Date(Date.now() + 3 * 86_400_000),
      });
      expect(pruned.images).toBe(2);
      expect(await db.trainingRuns.photos(queued.id)).toEqual([]);
      expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM training_run_photos'))).toBe(0);
    });

    it("keeps the web chat operator's name with their job and its version (the id is random)", async () => {
      const training = createTrainingService({
        db,
        folders: botFolders,
        limits: { maxEpochs: 3, maxBatch: 64, jobsPerInstructor: 2 },
      });
      const web = { platform: 'web' as const, userId: 'wQ2x9fLk0aZ1bC3dE4fG' };
      const { job } = await training.enqueue({ model: MODEL, epochs: 1 }, { ...web, name: 'Anna' });
      const { job: nameless } = await training.enqueue({ model: MODEL, epochs: 1 }, web);
      expect(job).toMatchObject({ requester: `web:${web.userId}`, requesterName: 'Anna' });
      expect(nameless.requester).toBe(`web:${web.userId}`);
      expect(nameless).not.toHaveProperty('requesterName');
      expect((await training.list()).map((j) => j.requesterName)).toEqual(
        expect.arrayContaining(['Anna', undefined]),
      );
      await db.modelVersions.register({
        modelId: MODEL,
        version: '1',
        path: '/p1',
        jobId: job.id,
        createdBy: `web:${web.userId}`,
      });
      await db.modelVersions.register({
        modelId: MODEL,
        version: '2',
        path: '/p2',
        jobId: nameless.id,
        createdBy: `web:${web.userId}`,
      });
      const versions = await training.versions(MODEL);
      expect(versions.map((v) => [v.version, v.createdBy, v.createdByName])).toEqual([
        ['1', `web:${web.userId}`, 'Anna'],
        ['2', `web:${web.userId}`, undefined],
      ]);
    });
  });
}
