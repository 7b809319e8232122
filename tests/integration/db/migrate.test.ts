import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SQLITE_BUSY_TIMEOUT_MS, sqliteUrl } from '../../../src/db/client.ts';
import { openDatabase } from '../../../src/db/database.ts';
import { MIGRATIONS_DIR, MIGRATIONS_TABLE, migrate } from '../../../src/db/migrate.ts';
import {
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  countOf,
  createTestDatabase,
  type TestDatabase,
} from './helpers.ts';

/** Ids of the migrations the project ships for `provider`, in order. */
async function shippedMigrations(provider: 'sqlite' | 'postgresql' = 'sqlite'): Promise<string[]> {
  return (await readdir(path.join(MIGRATIONS_DIR, provider)))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.replace(/\.sql$/, ''))
    .sort();
}

const TABLES = [
  'chats',
  'kept_images',
  'lab_submissions',
  'labels',
  'model_version_files',
  'model_versions',
  'served_models',
  'submissions',
  'telegram_updates',
  'training_run_photos',
  'training_runs',
  'users',
];

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`migrations on ${provider}`, () => {
    let testDb: TestDatabase;
    let migrationsDir: string;

    beforeEach(async () => {
      testDb = await createTestDatabase(provider);
      migrationsDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-migrations-'));
      await cp(MIGRATIONS_DIR, migrationsDir, { recursive: true });
    });

    afterEach(async () => {
      await testDb.cleanup();
      await rm(migrationsDir, { recursive: true, force: true });
    });

    const recorded = () => testDb.query(`SELECT id, checksum FROM ${MIGRATIONS_TABLE} ORDER BY id`);

    it('creates every table and records each migration once', async () => {
      const first = await migrate(testDb.target);
      const files = await readdir(path.join(MIGRATIONS_DIR, provider));

      expect(first.applied).toEqual(files.map((f) => f.replace(/\.sql$/, '')).sort());
      const rows = await recorded();
      expect(rows.map((r) => r.id)).toEqual(first.applied);
      expect(rows.every((r) => typeof r.checksum === 'string' && r.checksum.length === 64)).toBe(
        true,
      );
      const tables =
        provider === 'sqlite'
          ? await testDb.query(
              "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ? ORDER BY name",
              [MIGRATIONS_TABLE],
            )
          : await testDb.query(
              'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> ? ORDER BY table_name',
              [MIGRATIONS_TABLE],
            );
      expect(tables.map((t) => t.name)).toEqual(TABLES);
    });

    it('applies nothing when run again, and keeps the data', async () => {
      const db = await openDatabase(testDb.config);
      await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
      await db.close();

      const again = await migrate(testDb.target);
      const reopened = await openDatabase(testDb.config);
      const count = await reopened.submissions.count();
      await reopened.close();

      const all = await shippedMigrations(provider);
      expect(again.applied).toEqual([]);
      expect(again.skipped).toEqual(all);
      expect(count).toBe(0);
      expect(countOf(await testDb.query(`SELECT COUNT(*) AS n FROM ${MIGRATIONS_TABLE}`))).toBe(
        all.length,
      );
      expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM users'))).toBe(1);
    });

    it('applies only the new file when a migration is added', async () => {
      await migrate(testDb.target, { dir: migrationsDir });
      await writeFile(
        path.join(migrationsDir, provider, '9001_notes.sql'),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\nINSERT INTO notes (id, body) VALUES (1, 'hello; world');\n",
      );

      const shipped = await shippedMigrations(provider);
      const result = await migrate(testDb.target, { dir: migrationsDir });

      expect(result).toEqual({ applied: ['9001_notes'], skipped: shipped });
      expect(await testDb.query('SELECT body FROM notes')).toEqual([{ body: 'hello; world' }]);
      expect((await recorded()).map((r) => r.id)).toEqual([...shipped, '9001_notes'].sort());
    });

    it('rolls back a failing migration entirely and does not record it', async () => {
      await migrate(testDb.target, { dir: migrationsDir });
      await writeFile(
        path.join(migrationsDir, provider, '9001_broken.sql'),
        'CREATE TABLE half_done (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n',
      );

      await expect(migrate(testDb.target, { dir: migrationsDir })).rejects.toThrow(/no_such_table/);

      expect((await recorded()).map((r) => r.id)).toEqual(await shippedMigrations(provider));
      await expect(testDb.query('SELECT * FROM half_done')).rejects.toThrow(/half_done/);
    });

    it('refuses to run when an applied migration file was edited', async () => {
      await migrate(testDb.target, { dir: migrationsDir });
      await writeFile(path.join(migrationsDir, provider, '0001_init.sql'), '-- edited\n', {
        flag: 'a',
      });

      await expect(migrate(testDb.target, { dir: migrationsDir })).rejects.toMatchObject({
        code: 'migration.changed',
      });
    });

    it('applies each migration exactly once when several processes start at once', async () => {
      const results = await Promise.all(Array.from({ length: 6 }, () => migrate(testDb.target)));

      const appliedCount = results.filter((r) => r.applied.includes('0001_init')).length;
      expect(appliedCount).toBe(1);
      expect(results.filter((r) => r.skipped.includes('0001_init'))).toHaveLength(5);
      expect(countOf(await testDb.query(`SELECT COUNT(*) AS n FROM ${MIGRATIONS_TABLE}`))).toBe(
        (await shippedMigrations()).length,
      );
    });
  });
}

describe('the SQLite file', () => {
  let testDb: TestDatabase;

  beforeEach(async () => {
    testDb = await createTestDatabase('sqlite');
  });

  afterEach(async () => {
    await testDb.cleanup();
  });

  it('lives at <DATA_DIR>/cnn-classroom.db in WAL journal mode', async () => {
    const db = await openDatabase(testDb.config);
    await db.close();

    expect(testDb.target).toEqual({
      provider: 'sqlite',
      file: path.join(path.resolve(testDb.config.DATA_DIR), 'cnn-classroom.db'),
    });
    expect(await testDb.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
  });

  it('is readable by its owner only, in a folder only its owner can enter (issue 19)', async () => {
    const dataDir = path.join(testDb.config.DATA_DIR, 'fresh');
    const db = await openDatabase({ DATA_DIR: dataDir });
    await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
    const file = path.join(dataDir, 'cnn-classroom.db');
    const modes = {
      dir: (await stat(dataDir)).mode & 0o777,
      db: (await stat(file)).mode & 0o777,
      wal: (await stat(`${file}-wal`)).mode & 0o777,
    };
    await db.close();
    expect(modes).toEqual({ dir: 0o700, db: 0o600, wal: 0o600 });
  });

  it('makes a writer wait for another process holding the write lock', async () => {
    const db = await openDatabase(testDb.config);
    await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
    if (testDb.target.provider !== 'sqlite') throw new Error('unreachable');
    // Another process (the CLI trainer, say) writes for 400 ms. In this process the wait would
    // block the event loop and so the other connection, hence a child process.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const { createClient } = require('@libsql/client');
         const c = createClient({ url: ${JSON.stringify(sqliteUrl(testDb.target.file))} });
         c.transaction('write').then(async (tx) => {
           await tx.execute("UPDATE users SET name = 'held'");
           console.log('locked');
           setTimeout(() => tx.commit().then(() => c.close()), 400);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    holder.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    await Promise.race([
      new Promise((resolve) => holder.stdout.once('data', resolve)),
      exited.then(() => {
        throw new Error(`lock holder exited early: ${stderr}`);
      }),
    ]);

    const started = Date.now();
    // An upsert of a new user runs in a transaction that reads before it writes: the case
    // SQLite answers with SQLITE_BUSY at once unless the transaction begins IMMEDIATE.
    const user = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '2' });
    const waited = Date.now() - started;
    await exited;
    await db.close();

    expect(user.id).toBe(2);
    expect(waited).toBeGreaterThanOrEqual(200);
    expect(waited).toBeLessThan(SQLITE_BUSY_TIMEOUT_MS);
    expect(await testDb.query('SELECT name FROM users WHERE id = 1')).toEqual([{ name: 'held' }]);
  });
});
