import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteUrl } from '../../../src/db/client.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { DatabaseError } from '../../../src/db/errors.ts';
import { shardBytes } from '../../../scripts/lib/store-version-child.ts';

/**
 * One SQLite file opened by several processes (the bot, the trainer worker, CLI commands), and
 * more than once by one of them. SQLite in WAL mode relies on every open connection holding a
 * SHARED POSIX lock on the database file: a process whose last connection closes while it gets
 * an EXCLUSIVE lock takes itself for the only user, checkpoints, and deletes the -wal and -shm
 * files. POSIX locks belong to the process, and closing any descriptor of the file drops all of
 * them: `migrate()` used to open and close the file on every open, so a second open in a process
 * silently unlocked the first one's connections (and the ones libSQL keeps until garbage
 * collection). The next writer process then deleted the WAL under them, and this process's next
 * open read its stale wal-index: SQLITE_CORRUPT / SQLITE_NOTADB, and committed rows lost.
 */

const run = promisify(execFile);
const CHILD = path.resolve(import.meta.dirname, '../../../scripts/lib/store-version-child.ts');
/** A version's shard: 4 parts of 1 MiB and a bit, enough to reach the WAL's auto-checkpoint. */
const SHARD_BYTES = 4 * 1024 * 1024 + 17;

let dataDir: string;
const open: Database[] = [];

async function openHere(): Promise<Database> {
  const db = await openDatabase({ DATA_DIR: dataDir });
  open.push(db);
  return db;
}

/** The trainer worker: another process stores version `version` and exits. */
async function storeVersionElsewhere(version: number): Promise<void> {
  await run(
    process.execPath,
    ['--import', 'tsx', CHILD, dataDir, String(version), String(SHARD_BYTES)],
    { env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
}

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-sqlite-reopen-'));
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
  await rm(dataDir, { recursive: true, force: true });
});

describe('SQLite opened by several processes, and twice by one', () => {
  it('keeps this process holding the file after a second open here', async () => {
    const first = await openHere();
    await first.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
    await openHere();
    // Another process asks for the file exclusively (what SQLite's last connection does on
    // close before it deletes the WAL): refused while this process has it open.
    const { stdout } = await run(process.execPath, [
      '--input-type=module',
      '-e',
      `import { createClient } from '@libsql/client';
       const c = createClient({ url: ${JSON.stringify(sqliteUrl(path.join(dataDir, 'cnn-classroom.db')))}, timeout: 100 });
       await c.execute('PRAGMA locking_mode = EXCLUSIVE');
       try { await c.execute('SELECT count(*) FROM users'); console.log('EXCLUSIVE'); }
       catch (e) { console.log(e.code); }
       c.close();`,
    ]);
    expect(stdout.trim()).toBe('SQLITE_BUSY');
  });

  it('re-opens the file after another process stored large versions in it', async () => {
    const served = await openHere();
    await served.modelVersions.list('alexnet-cifar10');
    for (let version = 1; version <= 3; version++) {
      // A command in this process opens and closes the database meanwhile.
      const command = await openHere();
      await command.modelVersions.list('alexnet-cifar10');
      await command.close();
      open.splice(open.indexOf(command), 1);

      await storeVersionElsewhere(version);

      const reopened = await openHere();
      const versions = await reopened.modelVersions.list('alexnet-cifar10');
      expect(versions.map((v) => v.version)).toEqual(
        Array.from({ length: version }, (_, i) => String(i + 1)),
      );
      const files = await reopened.modelVersions.readFiles('alexnet-cifar10', String(version));
      const shard = files.find((f) => f.name === 'group1-shard1of1.bin');
      expect(shard?.bytes.length).toBe(SHARD_BYTES);
      expect(
        createHash('sha256')
          .update(shard?.bytes ?? new Uint8Array())
          .digest('hex'),
      ).toBe(createHash('sha256').update(shardBytes(version, SHARD_BYTES)).digest('hex'));
    }
    // The connection opened first sees every version too.
    expect((await served.modelVersions.list('alexnet-cifar10')).map((v) => v.version)).toEqual([
      '1',
      '2',
      '3',
    ]);
  });

  it('refuses a file that is not a SQLite database, clearly, and leaves it as it was', async () => {
    const file = path.join(dataDir, 'cnn-classroom.db');
    const text = 'DATABASE_URL pointed here by mistake: this is a text file, not SQLite.\n'.repeat(
      40,
    );
    await writeFile(file, text);
    const failure = await openDatabase({ DATA_DIR: dataDir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(DatabaseError);
    expect(failure).toMatchObject({ code: 'not_a_database' });
    expect((failure as Error).message).toContain(file);
    expect((failure as Error).message).toContain('not a SQLite database');
    expect(await readFile(file, 'utf8')).toBe(text);
  });
});
