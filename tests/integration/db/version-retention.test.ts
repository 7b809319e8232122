/**
 * Model versions over a whole term: retention (`versions prune`, `MODEL_VERSIONS_KEEP`) keeps
 * exactly the versions someone may need and deletes the others' rows, stored files and folders;
 * a version is stored in short transactions (a student's submission never waits behind 20 MB);
 * the reporter reads a version's curves without writing its weights anywhere.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { translator, userErrorKey } from '../../../src/core/i18n.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { DatabaseError } from '../../../src/db/errors.ts';
import { createDbClient, type AppPrismaClient } from '../../../src/db/client.ts';
import {
  createModelVersionRepository,
  FILE_PART_BYTES,
} from '../../../src/db/model-version-repository.ts';
import { REPORT_WINDOW_MS } from '../../../src/db/training-run-repository.ts';
import { UserError } from '../../../src/errors.ts';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { fakeContext, makeCore } from '../../unit/core/helpers.ts';
import { createDbWorker } from '../../../src/jobs/db-worker.ts';
import { startJobReporter } from '../../../src/jobs/reporter.ts';
import { createTrainingService } from '../../../src/jobs/training-service.ts';
import { pruneVersions, sweepAbandonedVersions } from '../../../src/jobs/version-retention.ts';
import {
  readFolderFiles,
  stagingDir,
  versionDir,
  type VersionFolders,
} from '../../../src/jobs/version-store.ts';
import type { ChildJobResult, JobRunner } from '../../../src/jobs/run-in-child.ts';
import { exists } from '../../../src/io/files.ts';
import {
  createTestDatabase,
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  type TestDatabase,
} from './helpers.ts';

const MODEL = 'lenet-mnist';
const OTHER = 'plaincnn-fashion';
const LIMITS = { maxEpochs: 3, maxBatch: 64, jobsPerInstructor: 1 };

/** A logger whose lines (as objects) land in `lines`. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** A job's child process as the worker sees it: a folder (a shard of `shardBytes`) and a result. */
function fakeRunner(shardBytes: number): JobRunner {
  return async (spec): Promise<ChildJobResult> => {
    await mkdir(spec.outputDir, { recursive: true });
    await writeFile(path.join(spec.outputDir, 'model.json'), '{}');
    await writeFile(path.join(spec.outputDir, 'group1-shard1of1.bin'), randomBytes(shardBytes));
    await writeFile(path.join(spec.outputDir, 'history.png'), Buffer.from('curves'));
    return {
      type: 'done',
      testAccuracy: 0.5,
      modelDir: spec.outputDir,
      history: [],
      datasetFingerprint: 'f'.repeat(64),
      seconds: 1,
    };
  };
}

/** Bytes of every plain file in a folder. */
async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(path.join(dir, name))).size;
  return total;
}

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`model versions over a term on ${provider}`, () => {
    let testDb: TestDatabase;
    let db: Database;
    let root: string;
    let folders: VersionFolders;

    beforeEach(async () => {
      testDb = await createTestDatabase(provider);
      db = await openDatabase(testDb.config);
      root = await mkdtemp(path.join(os.tmpdir(), 'version-retention-'));
      folders = { modelsDir: path.join(root, 'models'), dataDir: path.join(root, 'data') };
    });

    afterEach(async () => {
      await db.close();
      await testDb.cleanup();
      await rm(root, { recursive: true, force: true });
    });

    /**
     * Version `n` of `model` as a job leaves it: its folder under DATA_DIR and its files in the
     * database (a shard of `shardBytes`, several parts when over 1 MiB).
     */
    async function trained(
      model: string,
      n: number,
      shardBytes = 3000 + n,
      parentVersion?: string,
    ): Promise<void> {
      const files = [
        { name: 'model.json', bytes: Buffer.from(JSON.stringify({ n })) },
        { name: 'group1-shard1of1.bin', bytes: randomBytes(shardBytes) },
        { name: 'history.png', bytes: Buffer.from(`png of ${model} ${n}`) },
      ];
      const dir = versionDir(folders, model, String(n));
      await mkdir(dir, { recursive: true });
      for (const f of files) await writeFile(path.join(dir, f.name), f.bytes);
      await db.modelVersions.register({
        modelId: model,
        version: String(n),
        path: dir,
        exclusive: true,
        files,
        testAccuracy: 0.9,
        parentVersion,
      });
    }

    const versionsOf = async (model: string): Promise<string[]> =>
      (await db.modelVersions.list(model)).map((v) => v.version).sort((a, b) => +a - +b);
    const fileRows = async (): Promise<number> =>
      Number((await testDb.query('SELECT COUNT(*) AS n FROM model_version_files'))[0]?.n);

    /** Versions 0..6 of the model; 5 served, so a `/rollback` without a version goes to 4. */
    async function aTerm(): Promise<void> {
      await db.modelVersions.register({
        modelId: MODEL,
        version: '0',
        path: path.join(folders.modelsDir, MODEL),
      });
      for (let n = 1; n <= 6; n++) await trained(MODEL, n);
      await db.modelVersions.activate(MODEL, '5');
    }

    /**
     * The chat over this database, instructor `1` on Telegram and Discord: `say` sends one
     * message to a group and returns the replies.
     */
    function chat(): (
      text: string,
      as?: { platform?: 'telegram' | 'discord'; userId?: string; lang?: string },
    ) => Promise<string[]> {
      const training = createTrainingService({ db, folders, limits: LIMITS });
      const { core } = makeCore({
        overrides: {
          training,
          admins: [
            { platform: 'telegram', userId: '1' },
            { platform: 'discord', userId: '1' },
          ],
          logger: pino({ level: 'silent' }),
        },
      });
      return async (text, as = {}) => {
        const userId = as.userId ?? '1';
        const { ctx, out } = fakeContext({
          platform: as.platform ?? 'telegram',
          user: { id: userId, name: `User ${userId}`, languageCode: as.lang ?? 'en' },
          chat: { id: '-100', type: 'group', title: 'lab' },
          text,
        });
        await core.handle(ctx);
        return out.texts;
      };
    }

    /** Runs the reporter once over this database; returns the images it sent, in order. */
    async function reportOnce(): Promise<Buffer[]> {
      const sent: Buffer[] = [];
      const reporter = startJobReporter({
        db,
        folders,
        messengers: [
          {
            platform: 'telegram',
            editText: () => Promise.resolve(),
            sendImage: (_chat, bytes) => {
              sent.push(Buffer.from(bytes));
              return Promise.resolve();
            },
          },
        ],
        logger: pino({ level: 'silent' }),
        pollMs: 600_000,
      });
      await reporter.tick();
      await reporter.stop();
      return sent;
    }

    it('keeps exactly the shipped, served, rollback and newest versions, and frees what it reports', async () => {
      await aTerm();
      await trained(OTHER, 1);
      const removedDirs = [1, 2, 3].map((n) => versionDir(folders, MODEL, String(n)));
      const expectedDisk = (await Promise.all(removedDirs.map(folderSize))).reduce((a, b) => a + b);
      const expectedDb = [1, 2, 3].reduce(
        (n, v) =>
          n +
          Buffer.byteLength(JSON.stringify({ n: v })) +
          3000 +
          v +
          `png of ${MODEL} ${v}`.length,
        0,
      );
      expect(await fileRows()).toBe(7 * 3);

      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 1 });

      expect(report.removed.map((r) => r.version)).toEqual(['1', '2', '3']);
      expect(report.kept).toEqual([
        { modelId: MODEL, version: '0', reason: 'shipped' },
        { modelId: MODEL, version: '4', reason: 'rollback' },
        { modelId: MODEL, version: '5', reason: 'served' },
        { modelId: MODEL, version: '6', reason: 'recent' },
      ]);
      expect(report.removed.every((r) => r.files === 3)).toBe(true);
      expect(report.dbBytes).toBe(expectedDb);
      expect(report.diskBytes).toBe(expectedDisk);
      expect(await versionsOf(MODEL)).toEqual(['0', '4', '5', '6']);
      expect(await versionsOf(OTHER)).toEqual(['1']);
      // Rows of the stored files went with their versions; the folders too.
      expect(await fileRows()).toBe(4 * 3);
      for (const dir of removedDirs) expect(await exists(dir)).toBe(false);
      expect(await exists(versionDir(folders, MODEL, '4'))).toBe(true);
      // The served one still reads back whole.
      expect((await db.modelVersions.readFiles(MODEL, '5')).map((f) => f.name)).toEqual([
        'group1-shard1of1.bin',
        'history.png',
        'model.json',
      ]);

      // Again: nothing more to remove.
      expect((await pruneVersions(db, folders, { modelId: MODEL, keep: 1 })).removed).toEqual([]);
    });

    it('never gives a pruned version number to a new version (its job and submissions still name it)', async () => {
      await aTerm();
      // Version 6 came from job `run` (recorded with its number), as every trained version does.
      const run = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      expect((await db.trainingRuns.claim('w1', 60_000, 3)).run?.id).toBe(run.id);
      await db.trainingRuns.finishSucceeded(run.id, 'w1', { testAccuracy: 0.9 }, '6');
      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 0 });
      expect(report.removed.map((r) => r.version)).toEqual(['1', '2', '3', '6']);
      // 6 is gone, but job `run` produced "version 6": the next one is 7, not 6 again.
      expect(await db.modelVersions.nextVersion(MODEL)).toBe(7);
    });

    it("deletes no folder but a version's own numbered one, whatever a row says", async () => {
      await aTerm();
      // Rows no worker writes (a hand-edited database, an import): their folders would be the
      // model's folder, every model's folder, or a job's staging folder.
      const staging = path.join(folders.dataDir, 'models', MODEL, '.job-9');
      await mkdir(staging, { recursive: true });
      for (const [version, where] of [
        ['', path.join(folders.dataDir, 'models', MODEL)],
        ['..', path.join(folders.dataDir, 'models')],
        ['7', staging],
        ['8', versionDir(folders, MODEL, '5')],
      ] as const) {
        await db.modelVersions.register({ modelId: MODEL, version, path: where });
      }
      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 0 });
      expect(report.removed.map((r) => r.version).sort()).toEqual(
        ['', '..', '1', '2', '3', '6', '7', '8'].sort(),
      );
      expect(await exists(versionDir(folders, MODEL, '5'))).toBe(true);
      expect(await exists(versionDir(folders, MODEL, '4'))).toBe(true);
      expect(await exists(staging)).toBe(true);
      expect(await exists(versionDir(folders, MODEL, '6'))).toBe(false);
    });

    it('keeps the version the bots answered with until the promotion just made', async () => {
      for (let n = 1; n <= 3; n++) await trained(MODEL, n);
      await db.modelVersions.activate(MODEL, '2');
      // 3 was not promoted; 4 (trained while 2 was served) is: every bot still answers with 2
      // until it has loaded 4 (seconds; a model not loaded yet is read from its folder).
      await trained(MODEL, 4, 3004, '2');
      await db.modelVersions.activate(MODEL, '4');
      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 1 });
      expect(report.removed.map((r) => r.version)).toEqual(['1']);
      expect(report.kept).toEqual([
        { modelId: MODEL, version: '2', reason: 'previous' },
        { modelId: MODEL, version: '3', reason: 'rollback' },
        { modelId: MODEL, version: '4', reason: 'served' },
      ]);
      expect(await exists(versionDir(folders, MODEL, '2'))).toBe(true);
      expect(translator('en')('versions.kept.previous')).toBe('served until the current one');
      expect(translator('ru')('versions.kept.previous')).toBe('была текущей до нынешней');
    });

    it('changes nothing in a dry run, and reports what it would remove', async () => {
      await aTerm();
      const report = await pruneVersions(db, folders, { keep: 0, dryRun: true });
      expect(report.dryRun).toBe(true);
      expect(report.removed.map((r) => r.version)).toEqual(['1', '2', '3', '6']);
      expect(report.dbBytes).toBeGreaterThan(4 * 3000);
      expect(await versionsOf(MODEL)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
      expect(await fileRows()).toBe(6 * 3);
      for (const n of [1, 2, 3, 6]) {
        expect(await exists(versionDir(folders, MODEL, String(n)))).toBe(true);
      }
    });

    it("keeps every version of a model while one of its jobs runs, and a worker's own job is no obstacle", async () => {
      await aTerm();
      const run = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      await db.trainingRuns.markRunning(run.id);
      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 0 });
      expect(report.removed).toEqual([]);
      expect(report.kept.filter((k) => k.reason === 'job').map((k) => k.version)).toEqual([
        '1',
        '2',
        '3',
        '6',
      ]);
      // The worker pruning after its own job (MODEL_VERSIONS_KEEP): that job is not in the way.
      const after = await pruneVersions(db, folders, {
        modelId: MODEL,
        keep: 1,
        afterJobId: run.id,
      });
      expect(after.removed.map((r) => r.version)).toEqual(['1', '2', '3']);
    });

    it('refuses in its transaction to remove the served version, or after the served one changed', async () => {
      await aTerm();
      const served = await db.modelVersions
        .remove(MODEL, '5', { servedIs: '5' })
        .catch((e: unknown) => e);
      expect(served).toBeInstanceOf(DatabaseError);
      expect((served as DatabaseError).code).toBe('conflict');
      // Decided while 6 was served: 4 would then not be the rollback version; 5 is served now.
      const moved = await db.modelVersions
        .remove(MODEL, '4', { servedIs: '6' })
        .catch((e: unknown) => e);
      expect((moved as DatabaseError).code).toBe('conflict');
      await expect(db.modelVersions.remove(MODEL, '0', { servedIs: '5' })).rejects.toThrow(
        /shipped/,
      );
      expect(await versionsOf(MODEL)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
      expect(await db.modelVersions.remove(MODEL, '2', { servedIs: '5' })).toEqual({
        files: 3,
        bytes: Buffer.byteLength(JSON.stringify({ n: 2 })) + 3002 + `png of ${MODEL} 2`.length,
      });
    });

    it('never leaves the served alias on a version removed while a rollback moved to it', async () => {
      await aTerm();
      // A `/rollback <model> <n>` and a prune of n at the same moment, again and again: one of
      // them wins; the bots are never told to serve a version whose row and files are gone.
      for (let n = 7; n < 37; n++) {
        await trained(MODEL, n);
        const served = (await db.modelVersions.served()).get(MODEL) ?? '0';
        const [moved, removed] = await Promise.allSettled([
          db.modelVersions.activate(MODEL, String(n), { ifServed: served }),
          db.modelVersions.remove(MODEL, String(n), { servedIs: served }),
        ]);
        const now = (await db.modelVersions.served()).get(MODEL) ?? '0';
        expect(await db.modelVersions.get(MODEL, now)).toBeDefined();
        expect(now === String(n)).toBe(moved.status === 'fulfilled');
        expect(await db.modelVersions.get(MODEL, String(n))).toEqual(
          removed.status === 'fulfilled' ? undefined : expect.anything(),
        );
        expect(moved.status === 'fulfilled' && removed.status === 'fulfilled').toBe(false);
      }
    });

    it('answers a rollback to a pruned version with the localized "no such version" reply', async () => {
      await aTerm();
      await pruneVersions(db, folders, { modelId: MODEL, keep: 1 });
      const training = createTrainingService({ db, folders, limits: LIMITS });
      const refused = await training.rollback(MODEL, '2').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(UserError);
      const e = refused as UserError;
      expect(e.id).toBe('version.unknown');
      expect(translator('en')(userErrorKey(e.id), e.params)).toBe(
        'lenet-mnist has no version 2. See /versions lenet-mnist.',
      );
      expect(translator('ru')(userErrorKey(e.id), e.params)).toBe(
        'У lenet-mnist нет версии 2. См. /versions lenet-mnist.',
      );
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('5');
      // Without a version it goes back to the kept 4, as retention promised.
      expect(await training.rollback(MODEL)).toEqual({ from: '5', to: '4' });
    });

    it('answers a rollback whose version is pruned while it runs with "no such version", not a generic error', async () => {
      await aTerm();
      // The prune lands between the rollback finding version 2 and moving the alias to it.
      const modelVersions = {
        ...db.modelVersions,
        activate: async (...args: Parameters<typeof db.modelVersions.activate>) => {
          await db.modelVersions.remove(MODEL, '2', { servedIs: '5' });
          return db.modelVersions.activate(...args);
        },
      };
      const training = createTrainingService({
        db: { ...db, modelVersions },
        folders,
        limits: LIMITS,
      });
      const refused = await training.rollback(MODEL, '2').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(UserError);
      expect((refused as UserError).id).toBe('version.unknown');
      expect((refused as UserError).params).toEqual({ model: MODEL, version: '2' });
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('5');
    });

    it('prunes from the chat for an instructor (ru), refuses a student, and /rollback to a pruned version says so', async () => {
      await aTerm();
      const send = chat();
      const say = (userId: string, lang: string, text: string): Promise<string[]> =>
        send(text, { userId, lang });
      const dbBytes = [1, 2, 3].reduce(
        (n, v) =>
          n +
          Buffer.byteLength(JSON.stringify({ n: v })) +
          3000 +
          v +
          `png of ${MODEL} ${v}`.length,
        0,
      );
      // A few kilobytes read as kilobytes, not as "0 MB".
      expect(dbBytes).toBeGreaterThan(1000);
      expect(dbBytes).toBeLessThan(999_950);
      const mb = (b: number): string =>
        `${new Intl.NumberFormat('ru', { maximumFractionDigits: 1 }).format(b / 1e3)} кБ`;

      expect((await say('2', 'en', '/versions lenet-mnist prune 1'))[0]).toMatch(
        /^Sorry, \/versions is for instructors only/,
      );
      expect(await versionsOf(MODEL)).toHaveLength(7);
      expect(await say('1', 'ru', '/versions lenet-mnist prune 1')).toEqual([
        `lenet-mnist: удалены версии v1, v2, v3, освобождено ${mb(dbBytes)} в базе данных и ${mb(dbBytes)} на диске. Оставлены: v0 (поставляется с ботом), v4 (к ней вернёт /rollback), v5 (текущая), v6 (новая).`,
      ]);
      expect(await versionsOf(MODEL)).toEqual(['0', '4', '5', '6']);
      expect(await say('1', 'en', '/versions lenet-mnist prune 1')).toEqual([
        'lenet-mnist: no version to remove. Kept: v0 (shipped), v4 (/rollback goes back to it), v5 (served), v6 (newest).',
      ]);
      expect(await say('1', 'ru', '/rollback lenet-mnist 2')).toEqual([
        'У lenet-mnist нет версии 2. См. /versions lenet-mnist.',
      ]);
      expect(await say('1', 'en', '/rollback lenet-mnist 2')).toEqual([
        'lenet-mnist has no version 2. See /versions lenet-mnist.',
      ]);
      expect(await say('1', 'en', '/versions lenet-mnist prune all')).toHaveLength(1);
      expect(await versionsOf(MODEL)).toEqual(['0', '4', '5', '6']);
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('5');
    });

    it('deletes nothing for "/versions <model> N" without the word prune, but for Discord\'s prune option', async () => {
      await aTerm();
      const send = chat();
      const say = (platform: 'telegram' | 'discord', text: string): Promise<string[]> =>
        send(text, { platform });
      // An instructor asking about version 2 on Telegram: a usage reply, every version stays.
      expect(await say('telegram', '/versions lenet-mnist 2')).toEqual([
        "I don't understand “lenet-mnist 2”. Usage: /versions <model> [prune N]",
      ]);
      expect(await versionsOf(MODEL)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
      // Discord's `prune` option arrives as the number after the model.
      expect((await say('discord', '/versions lenet-mnist 1'))[0]).toMatch(
        /^lenet-mnist: removed versions v1, v2, v3,/,
      );
      expect(await versionsOf(MODEL)).toEqual(['0', '4', '5', '6']);
    });

    it('stores a large version in parts under a pending row no reader sees, and removes a crashed one', async () => {
      const big = FILE_PART_BYTES * 2 + 123;
      await trained(MODEL, 1, big);
      const parts = await testDb.query(
        "SELECT part FROM model_version_files WHERE name = 'group1-shard1of1.bin' ORDER BY part",
      );
      expect(parts.map((p) => Number(p.part))).toEqual([0, 1, 2]);
      const shard = (await db.modelVersions.readFiles(MODEL, '1')).find((f) =>
        f.name.endsWith('.bin'),
      );
      const onDisk = (await readFolderFiles(versionDir(folders, MODEL, '1'))).find((f) =>
        f.name.endsWith('.bin'),
      );
      expect(shard?.size).toBe(big);
      expect(Buffer.from(shard!.bytes).equals(Buffer.from(onDisk!.bytes))).toBe(true);

      // Storing that fails half-way (the second file's part clashes) leaves no row, no part.
      const before = await fileRows();
      await expect(
        db.modelVersions.register({
          modelId: MODEL,
          version: '2',
          path: 'x',
          exclusive: true,
          files: [
            { name: 'a.bin', bytes: randomBytes(10) },
            { name: 'a.bin', bytes: randomBytes(10) },
          ],
        }),
      ).rejects.toThrow();
      expect(await fileRows()).toBe(before);
      expect(await db.modelVersions.nextVersion(MODEL)).toBe(2);

      // A worker that died while storing version 2: its row stays pending, seen by nobody.
      await testDb.query(
        `INSERT INTO model_versions (model_id, version, path, pending, created_at) VALUES (?, '2', 'x', ${provider === 'sqlite' ? 1 : 'true'}, CURRENT_TIMESTAMP)`,
        [MODEL],
      );
      expect(await db.modelVersions.get(MODEL, '2')).toBeUndefined();
      expect(await versionsOf(MODEL)).toEqual(['1']);
      expect(await db.modelVersions.nextVersion(MODEL)).toBe(3);
      await expect(db.modelVersions.activate(MODEL, '2')).rejects.toThrow(/no model version/);
      const report = await pruneVersions(db, folders, { modelId: MODEL, keep: 5 });
      expect(report.removed.map((r) => r.version)).toEqual(['2']);
      expect(await db.modelVersions.nextVersion(MODEL)).toBe(2);
    });

    it('prunes after each job with MODEL_VERSIONS_KEEP, keeping the served and rollback versions', async () => {
      const w = createDbWorker({
        trainingRuns: db.trainingRuns,
        modelVersions: db.modelVersions,
        folders: { ...folders, modelsDir: path.join(PROJECT_ROOT, 'models') },
        logger: pino({ level: 'silent' }),
        leaseMs: 3000,
        maxAttempts: 1,
        pollMs: 50,
        versionsKeep: 1,
        runner: fakeRunner(2048),
      });
      try {
        for (let n = 1; n <= 4; n++) {
          const run = await db.trainingRuns.create({ modelId: MODEL, params: { force: true } });
          const deadline = Date.now() + 20_000;
          while ((await db.trainingRuns.get(run.id))?.status !== 'succeeded') {
            if (Date.now() > deadline) throw new Error(`job ${run.id} did not finish`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      } finally {
        await w.close();
      }
      // 4 served (forced), 3 is where a rollback goes, 0 shipped; 1 and 2 went with their folders.
      expect(await versionsOf(MODEL)).toEqual(['0', '3', '4']);
      expect((await db.modelVersions.getActive(MODEL))?.version).toBe('4');
      expect(await exists(versionDir(folders, MODEL, '1'))).toBe(false);
      expect(await exists(versionDir(folders, MODEL, '2'))).toBe(false);
      expect(await exists(versionDir(folders, MODEL, '3'))).toBe(true);
      expect(await fileRows()).toBe(2 * 3);
    }, 60_000);

    /** Makes version `n` a pending row of job `jobId`, as a worker that stopped storing leaves it. */
    async function leftPending(n: number, jobId: number | null, shardBytes = 3000): Promise<void> {
      await trained(MODEL, n, shardBytes);
      // No folder yet: a worker renames its staging folder into place only after storing.
      await rm(versionDir(folders, MODEL, String(n)), { recursive: true, force: true });
      await testDb.query(
        `UPDATE model_versions SET pending = ${provider === 'sqlite' ? 1 : 'true'}, job_id = ? WHERE model_id = ? AND version = ?`,
        [jobId, MODEL, String(n)],
      );
    }
    const pendingRows = async (): Promise<string[]> =>
      (
        await testDb.query(
          `SELECT version FROM model_versions WHERE pending = ${provider === 'sqlite' ? 1 : 'true'} ORDER BY version`,
        )
      ).map((r) => String(r.version));
    const fileRowsOf = async (version: string): Promise<number> =>
      Number(
        (
          await testDb.query(
            'SELECT COUNT(*) AS n FROM model_version_files f JOIN model_versions v ON v.id = f.model_version_id WHERE v.model_id = ? AND v.version = ?',
            [MODEL, version],
          )
        )[0]?.n,
      );

    it("removes the pending rows of jobs that no longer run, logging the bytes freed, never a running job's", async () => {
      const failed = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      await db.trainingRuns.markFailed(failed.id, 'worker: worker stopped 1 times');
      const cancelled = await db.trainingRuns.create({ modelId: OTHER, params: {} });
      await db.trainingRuns.markCancelled(cancelled.id);
      const running = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      await db.trainingRuns.markRunning(running.id);
      // 2 MiB + 100 bytes in 3 parts, its last part never written (the worker died before it).
      await leftPending(1, failed.id, 2 * FILE_PART_BYTES + 100);
      await testDb.query(
        "DELETE FROM model_version_files WHERE part = 2 AND name = 'group1-shard1of1.bin'",
      );
      await leftPending(2, cancelled.id);
      await leftPending(3, running.id);
      await leftPending(4, null);
      const staging = stagingDir(folders, MODEL, failed.id);
      await mkdir(staging, { recursive: true });
      await writeFile(path.join(staging, 'model.json'), '{}');
      const { logger, lines } = capturedLogger();

      const removed = await sweepAbandonedVersions(db, folders, logger);

      const small = (n: number): number =>
        Buffer.byteLength(JSON.stringify({ n })) + `png of ${MODEL} ${n}`.length;
      expect(removed).toEqual([
        {
          modelId: MODEL,
          version: '1',
          jobId: failed.id,
          jobStatus: 'failed',
          files: 3,
          bytes: 2 * FILE_PART_BYTES + small(1),
        },
        {
          modelId: MODEL,
          version: '2',
          jobId: cancelled.id,
          jobStatus: 'cancelled',
          files: 3,
          bytes: 3000 + small(2),
        },
      ]);
      // The running job's row (its worker may be storing it now) and a row of no job stay.
      expect(await pendingRows()).toEqual(['3', '4']);
      expect(await fileRowsOf('1')).toBe(0);
      expect(await fileRowsOf('2')).toBe(0);
      expect(await fileRowsOf('3')).toBe(3);
      expect(await exists(staging)).toBe(false);
      const freed = lines.filter((l) => typeof l.dbBytes === 'number');
      expect(freed.map((l) => [l.version, l.job, l.dbBytes])).toEqual([
        ['1', failed.id, 2 * FILE_PART_BYTES + small(1)],
        ['2', cancelled.id, 3000 + small(2)],
      ]);
      expect(freed[0]?.msg).toBe(
        `removed the unfinished version ${MODEL}@1 that job ${failed.id} (failed) left pending: ${2 * FILE_PART_BYTES + small(1)} bytes freed in the database`,
      );
      // Nothing else to remove; once the job ends its row goes too.
      expect(await sweepAbandonedVersions(db, folders, logger)).toEqual([]);
      await db.trainingRuns.markFailed(running.id, 'other: boom');
      expect((await sweepAbandonedVersions(db, folders, logger)).map((r) => r.version)).toEqual([
        '3',
      ]);
      expect(await pendingRows()).toEqual(['4']);
    });

    it('a worker removes what a crashed worker left pending when it starts, and when it fails a spent lease', async () => {
      // Job a: its worker crashed while storing, and its lease was failed before this start.
      const a = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      await db.trainingRuns.markFailed(a.id, 'worker: worker stopped 3 times');
      await leftPending(1, a.id, FILE_PART_BYTES + 5);
      // Job b: still `running` under a dead worker's spent lease (its last try).
      const b = await db.trainingRuns.create({ modelId: OTHER, params: {} });
      expect((await db.trainingRuns.claim('dead', 1, 1)).run?.id).toBe(b.id);
      await new Promise((r) => setTimeout(r, 20));
      await trained(OTHER, 1);
      await testDb.query(
        `UPDATE model_versions SET pending = ${provider === 'sqlite' ? 1 : 'true'}, job_id = ? WHERE model_id = ? AND version = '1'`,
        [b.id, OTHER],
      );
      const { logger, lines } = capturedLogger();
      const w = createDbWorker({
        trainingRuns: db.trainingRuns,
        modelVersions: db.modelVersions,
        folders,
        logger,
        leaseMs: 3000,
        maxAttempts: 1,
        pollMs: 50,
        runner: () => Promise.reject(new Error('no job should run')),
      });
      try {
        const deadline = Date.now() + 20_000;
        while ((await pendingRows()).length > 0) {
          if (Date.now() > deadline)
            throw new Error(`still pending: ${(await pendingRows()).join(', ')}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await w.close();
      }
      expect((await db.trainingRuns.get(b.id))?.status).toBe('failed');
      expect(await fileRows()).toBe(0);
      expect(
        lines
          .filter((l) => typeof l.dbBytes === 'number')
          .map((l) => [l.model, l.job, l.jobStatus, l.dbBytes]),
      ).toEqual([
        [
          MODEL,
          a.id,
          'failed',
          Buffer.byteLength(JSON.stringify({ n: 1 })) +
            FILE_PART_BYTES +
            5 +
            `png of ${MODEL} 1`.length,
        ],
        [
          OTHER,
          b.id,
          'failed',
          Buffer.byteLength(JSON.stringify({ n: 1 })) + 3001 + `png of ${OTHER} 1`.length,
        ],
      ]);
    }, 30_000);

    /**
     * A worker storing versions of 2 MiB + 7 bytes (3 parts) through a client that runs
     * `onPart.next` (once) before a part is stored; `ended(id)` waits for a job's end and the
     * worker's clean-up after it.
     */
    function storingWorker() {
      const onPart: { next?: (() => Promise<void>) | undefined } = {};
      const client = createDbClient(testDb.target);
      const hooked = client.prisma.$extends({
        query: {
          modelVersionFile: {
            async create({ args, query }) {
              const hook = onPart.next;
              onPart.next = undefined;
              await hook?.();
              return query(args);
            },
          },
        },
      }) as unknown as AppPrismaClient;
      const { logger, lines } = capturedLogger();
      const w = createDbWorker({
        trainingRuns: db.trainingRuns,
        modelVersions: createModelVersionRepository(hooked),
        folders: { ...folders, modelsDir: path.join(PROJECT_ROOT, 'models') },
        logger,
        leaseMs: 60_000,
        maxAttempts: 1,
        pollMs: 50,
        runner: fakeRunner(2 * FILE_PART_BYTES + 7),
      });
      const ended = async (id: number): Promise<string> => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const r = await db.trainingRuns.get(id);
          // Done when it ended and the worker is past it (its clean-up after the job included).
          if (r && r.status !== 'queued' && r.status !== 'running' && w.current !== id) {
            return r.status;
          }
          if (Date.now() > deadline) throw new Error(`job ${id} did not end`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      const close = async (): Promise<void> => {
        await w.close();
        await client.close();
      };
      return { w, lines, ended, onPart, close };
    }

    it('discards, with a clear error, a version whose job failed or whose pending row went while the worker stored it', async () => {
      const { w, lines, ended, onPart, close } = storingWorker();
      const spent = 'worker: worker stopped 1 times (last lease by w1)';
      try {
        // 1. Its lease expired with no tries left while the parts were written: failed by a claim.
        const one = await db.trainingRuns.create({ modelId: MODEL, params: { force: true } });
        onPart.next = async () => {
          await db.trainingRuns.markFailed(one.id, spent, { reason: 'worker' });
        };
        expect(await ended(one.id)).toBe('failed');
        // 2. The same, and a clean-up (another worker's, or a prune) took its pending row too.
        const two = await db.trainingRuns.create({ modelId: MODEL, params: { force: true } });
        onPart.next = async () => {
          await db.trainingRuns.markFailed(two.id, spent, { reason: 'worker' });
          expect((await db.modelVersions.removeAbandoned()).map((r) => r.jobId)).toEqual([two.id]);
        };
        expect(await ended(two.id)).toBe('failed');

        for (const run of [one, two]) {
          const r = await db.trainingRuns.get(run.id);
          expect(r?.error).toBe(spent);
          expect(r?.version).toBeNull();
        }
        // Nothing visible, nothing served, nothing half-stored, no folder (0 is the shipped one).
        expect(await versionsOf(MODEL)).toEqual(['0']);
        expect(await db.modelVersions.getActive(MODEL)).toBeUndefined();
        expect(
          (await testDb.query('SELECT version FROM model_versions')).map((r) => r.version),
        ).toEqual(['0']);
        expect(await fileRows()).toBe(0);
        expect(await readdir(path.join(folders.dataDir, 'models', MODEL)).catch(() => [])).toEqual(
          [],
        );
        const errors = lines.filter((l) => l.level === 50).map((l) => String(l.msg));
        expect(errors).toHaveLength(2);
        expect(errors[0]).toBe(
          `job ${one.id}'s new version was discarded: job ${one.id} is failed, no longer run by ${w.owner}: its version ${MODEL}@1 is discarded. Nothing was recorded or served; the job's state is left as it is`,
        );
        expect(errors[1]).toMatch(
          new RegExp(
            `^job ${two.id}'s new version was discarded: model version ${MODEL}@1 was removed while its files were stored`,
          ),
        );

        // The worker goes on: the next job's version is recorded and served as usual.
        const three = await db.trainingRuns.create({ modelId: MODEL, params: { force: true } });
        expect(await ended(three.id)).toBe('succeeded');
        expect(await versionsOf(MODEL)).toEqual(['0', '1']);
        expect((await db.modelVersions.getActive(MODEL))?.jobId).toBe(three.id);
        expect((await db.modelVersions.storedFiles(MODEL, '1')).map((f) => f.size)).toEqual([
          2 * FILE_PART_BYTES + 7,
          'curves'.length,
          2,
        ]);
      } finally {
        await close();
      }
    }, 60_000);

    it('a job cancelled from the chat while its version is stored ends cancelled, its version neither recorded nor served', async () => {
      const { lines, ended, onPart, close } = storingWorker();
      const say = chat();
      try {
        // `force`: without the cancel, this version would be served.
        const run = await db.trainingRuns.create({ modelId: MODEL, params: { force: true } });
        let replies: string[] = [];
        onPart.next = async () => {
          replies = await say(`/cancel ${run.id}`);
        };
        expect(await ended(run.id)).toBe('cancelled');
        expect(replies).toEqual([`Job ${run.id} is cancelled.`]);
        const r = await db.trainingRuns.get(run.id);
        expect(r?.version).toBeNull();
        // Nothing visible, nothing served, nothing stored, no folder (0 is the shipped one).
        expect(await versionsOf(MODEL)).toEqual(['0']);
        expect(await db.modelVersions.getActive(MODEL)).toBeUndefined();
        expect(await fileRows()).toBe(0);
        expect(await readdir(path.join(folders.dataDir, 'models', MODEL)).catch(() => [])).toEqual(
          [],
        );
        expect(lines.filter((l) => l.level === 50)).toEqual([]);
        expect(lines.map((l) => l.msg)).toContain(
          `job ${run.id} cancelled while its version was stored: the version is discarded, the served model is unchanged`,
        );
      } finally {
        await close();
      }
    }, 60_000);

    it("keeps a version until its job's curves are sent to the chat, then prunes it (MODEL_VERSIONS_KEEP=1)", async () => {
      await db.modelVersions.register({
        modelId: MODEL,
        version: '0',
        path: path.join(folders.modelsDir, MODEL),
      });
      // Two jobs (two workers, or one quick after the other), neither promoted; the reporter
      // has not read the first one yet when the second one's worker prunes.
      const runs = [];
      for (const n of [1, 2]) {
        const run = await db.trainingRuns.create({
          modelId: MODEL,
          params: {},
          notify: { platform: 'telegram', chatId: '-100', messageId: String(10 + n), lang: 'en' },
        });
        expect((await db.trainingRuns.claim(`w${n}`, 60_000, 3)).run?.id).toBe(run.id);
        await db.modelVersions.register({
          modelId: MODEL,
          version: String(n),
          path: versionDir(folders, MODEL, String(n)),
          exclusive: true,
          jobId: run.id,
          parentVersion: '0',
          files: [
            { name: 'model.json', bytes: Buffer.from('{}') },
            { name: 'history.png', bytes: Buffer.from(`curves of v${n}`) },
          ],
        });
        await db.trainingRuns.finishSucceeded(run.id, `w${n}`, { testAccuracy: 0.5 }, String(n));
        runs.push(run);
      }
      const after = await pruneVersions(db, folders, {
        modelId: MODEL,
        keep: 1,
        afterJobId: runs[1]!.id,
      });
      expect(after.removed).toEqual([]);
      expect(after.kept).toEqual([
        { modelId: MODEL, version: '0', reason: 'shipped' },
        { modelId: MODEL, version: '1', reason: 'report' },
        { modelId: MODEL, version: '2', reason: 'recent' },
      ]);
      // Checked again in the removal's transaction.
      const refused = await db.modelVersions
        .remove(MODEL, '1', { servedIs: '0', reportWithinMs: REPORT_WINDOW_MS })
        .catch((e: unknown) => e);
      expect((refused as DatabaseError).code).toBe('conflict');
      expect((refused as DatabaseError).message).toMatch(/report/);

      // The reason as the chat shows it.
      const send = chat();
      const say = (lang: string, text: string): Promise<string[]> => send(text, { lang });
      expect(await say('en', '/versions lenet-mnist prune 1')).toEqual([
        "lenet-mnist: no version to remove. Kept: v0 (shipped), v1 (its job's curves are not sent yet), v2 (newest).",
      ]);
      expect(await say('ru', '/versions lenet-mnist prune 1')).toEqual([
        'lenet-mnist: удалять нечего. Оставлены: v0 (поставляется с ботом), v1 (ещё не отправлены кривые обучения её задачи), v2 (новая).',
      ]);

      // The reporter sends both jobs' curves (at once); then version 1 is only an old version.
      expect((await reportOnce()).map((b) => b.toString()).sort()).toEqual([
        'curves of v1',
        'curves of v2',
      ]);
      const later = await pruneVersions(db, folders, { modelId: MODEL, keep: 1 });
      expect(later.removed.map((r) => r.version)).toEqual(['1']);
      expect(await versionsOf(MODEL)).toEqual(['0', '2']);
    });

    it('sends the curves of a version trained elsewhere without writing any of its files', async () => {
      const png = randomBytes(5000);
      const shard = randomBytes(FILE_PART_BYTES + 10);
      await db.modelVersions.register({
        modelId: MODEL,
        version: '1',
        path: '/on/the/worker',
        exclusive: true,
        files: [
          { name: 'model.json', bytes: Buffer.from('{}') },
          { name: 'group1-shard1of1.bin', bytes: shard },
          { name: 'history.png', bytes: png },
        ],
      });
      const run = await db.trainingRuns.create({ modelId: MODEL, params: {} });
      expect((await db.trainingRuns.claim('w1', 60_000, 3)).run?.id).toBe(run.id);
      await db.trainingRuns.setNotify(run.id, {
        platform: 'telegram',
        chatId: '-100',
        messageId: '7',
        lang: 'en',
      });
      await db.trainingRuns.finishSucceeded(run.id, 'w1', { testAccuracy: 0.9 }, '1');
      const sent = await reportOnce();
      expect(sent).toHaveLength(1);
      expect(Buffer.from(sent[0]!).equals(png)).toBe(true);
      // Nothing of the version was written on this machine: no folder, no shard.
      expect(await exists(path.join(folders.dataDir, 'models'))).toBe(false);
    });
  });
}

describe('storing a 20 MB version on SQLite', () => {
  let testDb: TestDatabase;
  let bot: Database;

  beforeEach(async () => {
    testDb = await createTestDatabase('sqlite');
    bot = await openDatabase(testDb.config);
  });

  afterEach(async () => {
    await bot.close();
    await testDb.cleanup();
  });

  it('lets every concurrent submission in while a worker process stores it (no SQLITE_BUSY, none lost)', async () => {
    const user = await bot.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
    // The worker is another process (as in production): the script's child mode stores it.
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../../../scripts/version-lock.ts', import.meta.url)),
        '--child',
        testDb.config.DATA_DIR,
        '--mb',
        '20',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    let stderr = '';
    worker.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));
    const errors: string[] = [];
    let inserted = 0;
    while (running) {
      try {
        await bot.submissions.recordRejection({
          userId: user.id,
          command: 'predict',
          errorCode: 'image.pdf',
        });
        inserted++;
      } catch (e) {
        errors.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await exited, stderr).toBe(0);
    expect(errors).toEqual([]);
    expect(inserted).toBeGreaterThan(5);
    expect(await bot.submissions.count()).toBe(inserted);
    expect((await bot.modelVersions.storedFiles('alexnet-cifar10', '1'))[0]?.size).toBe(
      20 * 1024 * 1024,
    );
  }, 60_000);
});
