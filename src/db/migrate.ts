import { createHash } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createClient, type Client as LibsqlClient } from '@libsql/client';
import type pg from 'pg';
import { PROJECT_ROOT } from '../config.ts';
import { logger } from '../logger.ts';
import {
  SQLITE_BUSY_TIMEOUT_MS,
  createPgPool,
  quoteIdentifier,
  sqliteUrl,
  type DatabaseProvider,
  type DatabaseTarget,
} from './client.ts';
import { DatabaseError } from './errors.ts';

/**
 * Why not `prisma migrate deploy`: it needs Prisma's native schema engine, which is downloaded at
 * install time and cannot be on an offline machine. The SQL files are written per provider, kept
 * beside the schemas, and applied here at start-up.
 */

/** Table recording applied migrations. */
export const MIGRATIONS_TABLE = 'schema_migrations';

/** Folder holding `<provider>/NNNN_name.sql`. */
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

/** One SQL file. */
export interface Migration {
  /** File name without `.sql`, e.g. `0001_init`; files are applied in name order. */
  readonly id: string;
  readonly sql: string;
  /** SHA-256 of the file, hex: a file changed after it was applied is refused. */
  readonly checksum: string;
}

/** What a run did. */
export interface MigrationResult {
  /** Migrations this run applied, in order. */
  readonly applied: readonly string[];
  /** Migrations found already applied. */
  readonly skipped: readonly string[];
}

/** Reads `<dir>/<provider>/*.sql`, sorted by name. */
export async function readMigrations(
  provider: DatabaseProvider,
  dir: string = MIGRATIONS_DIR,
): Promise<Migration[]> {
  const folder = path.join(dir, provider);
  const names = (await readdir(folder)).filter((n) => n.endsWith('.sql')).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(folder, name), 'utf8');
      return {
        id: name.slice(0, -'.sql'.length),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

/**
 * Brings a database up to date: applies each pending migration in its own transaction and records
 * it in {@link MIGRATIONS_TABLE}. Safe to run again (applies nothing) and from several processes
 * at once: PostgreSQL runs are serialized by an advisory lock, SQLite ones by its write lock. For
 * SQLite it also switches the file to WAL journal mode (readers do not block the writer).
 *
 * @throws {DatabaseError} `migration.changed` when an applied file's checksum differs;
 *   `not_a_database` when the SQLite file is not a database (its content unchanged).
 * @example
 * const { applied } = await migrate({ provider: 'sqlite', file: 'data/cnn-classroom.db' });
 */
export async function migrate(
  target: DatabaseTarget,
  options: { readonly dir?: string } = {},
): Promise<MigrationResult> {
  const migrations = await readMigrations(target.provider, options.dir);
  const result =
    target.provider === 'sqlite'
      ? await migrateSqlite(target.file, migrations)
      : await migratePostgres(target, migrations);
  if (result.applied.length > 0) {
    logger.info({ provider: target.provider, applied: result.applied }, 'database migrated');
  }
  return result;
}

function checkUnchanged(migration: Migration, appliedChecksum: string): void {
  if (appliedChecksum !== migration.checksum) {
    throw new DatabaseError(
      'migration.changed',
      `migration ${migration.id} was edited after it was applied; add a new migration instead`,
    );
  }
}

async function migrateSqlite(
  file: string,
  migrations: readonly Migration[],
): Promise<MigrationResult> {
  // The database holds students' names and submissions: the bot's user only (issue 19). SQLite
  // gives its -wal and -shm files the database file's permissions.
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await createIfMissing(file);
  await chmod(file, 0o600);
  const client = createClient({ url: sqliteUrl(file), timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    // Persistent: stored in the file, so every later connection uses WAL too.
    await client.execute('PRAGMA journal_mode = WAL').catch((error: unknown) => {
      throw notADatabase(file, error) ?? error;
    });
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
         id TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`,
    );
    const applied: string[] = [];
    const skipped: string[] = [];
    for (const migration of migrations) {
      if (await applySqlite(client, migration)) applied.push(migration.id);
      else skipped.push(migration.id);
    }
    return { applied, skipped };
  } finally {
    client.close();
  }
}

/**
 * Creates an empty database file, owner-only, unless one is there; never opens an existing one.
 * Closing any descriptor of a file drops every POSIX lock this process holds on it, and in WAL
 * mode each open SQLite connection keeps a SHARED lock on the database file: it tells another
 * process that closes its last connection not to checkpoint and delete the -wal and -shm files
 * under us. An open-and-close here on every `migrate()` silently unlocked every connection this
 * process already had (libSQL also keeps closed ones until garbage collection), and the next
 * writer process to exit deleted the WAL under them: this process's next open then read a stale
 * wal-index and failed with SQLITE_CORRUPT or SQLITE_NOTADB, and could lose committed rows.
 */
async function createIfMissing(file: string): Promise<void> {
  try {
    await (await open(file, 'wx', 0o600)).close();
  } catch (error) {
    // EEXIST: there is a file (no descriptor was opened); leave it to SQLite.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * The clear error for a file SQLite refuses as a database (SQLITE_NOTADB: a text file, an
 * encrypted one...), or undefined for any other failure. Its content is left as it is (its mode
 * was already set to 0600).
 */
function notADatabase(file: string, error: unknown): DatabaseError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'SQLITE_NOTADB') return undefined;
  return new DatabaseError(
    'not_a_database',
    `${file} is not a SQLite database (SQLite answered SQLITE_NOTADB); its content was left ` +
      "unchanged. Point DATA_DIR or DATABASE_URL at the bot's database file; if this is it, " +
      `check it from a fresh process (sqlite3 ${file} 'PRAGMA integrity_check') before moving ` +
      'anything',
  );
}

/** Applies one migration unless recorded; true if applied. */
async function applySqlite(client: LibsqlClient, migration: Migration): Promise<boolean> {
  // BEGIN IMMEDIATE takes the write lock before the check, so two processes cannot both apply.
  const tx = await client.transaction('write');
  try {
    const found = await tx.execute({
      sql: `SELECT checksum FROM ${MIGRATIONS_TABLE} WHERE id = ?`,
      args: [migration.id],
    });
    const row = found.rows[0];
    if (row !== undefined) {
      checkUnchanged(migration, typeof row.checksum === 'string' ? row.checksum : '');
      await tx.rollback();
      return false;
    }
    await tx.executeMultiple(migration.sql);
    await tx.execute({
      sql: `INSERT INTO ${MIGRATIONS_TABLE} (id, checksum, applied_at) VALUES (?, ?, ?)`,
      args: [migration.id, migration.checksum, new Date().toISOString()],
    });
    await tx.commit();
    return true;
  } catch (error) {
    if (!tx.closed) await tx.rollback();
    throw error;
  } finally {
    tx.close();
  }
}

/** A 64-bit advisory lock key per schema, as a decimal string (pg has no bigint parameter type). */
function advisoryLockKey(schema: string): string {
  const digest = createHash('sha256').update(`cnn-classroom migrations ${schema}`).digest();
  return digest.readBigInt64BE(0).toString();
}

async function migratePostgres(
  target: Extract<DatabaseTarget, { provider: 'postgresql' }>,
  migrations: readonly Migration[],
): Promise<MigrationResult> {
  const pool = createPgPool(target);
  const client = await pool.connect();
  const lockKey = advisoryLockKey(target.schema);
  try {
    // Session-level lock: held across the per-migration transactions, released on disconnect
    // even if this process dies.
    await client.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(target.schema)}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
           id TEXT PRIMARY KEY, checksum TEXT NOT NULL,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
      );
      const rows = await client.query<{ id: string; checksum: string }>(
        `SELECT id, checksum FROM ${MIGRATIONS_TABLE}`,
      );
      const done = new Map(rows.rows.map((r) => [r.id, r.checksum]));
      const applied: string[] = [];
      const skipped: string[] = [];
      for (const migration of migrations) {
        const checksum = done.get(migration.id);
        if (checksum !== undefined) {
          checkUnchanged(migration, checksum);
          skipped.push(migration.id);
          continue;
        }
        await applyPostgres(client, migration);
        applied.push(migration.id);
      }
      return { applied, skipped };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]);
    }
  } finally {
    client.release();
    await pool.end();
  }
}

async function applyPostgres(client: pg.PoolClient, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    // No parameters: node-postgres uses the simple query protocol, which runs many statements.
    await client.query(migration.sql);
    await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (id, checksum) VALUES ($1, $2)`, [
      migration.id,
      migration.checksum,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
