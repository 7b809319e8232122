import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@libsql/client';
import pg from 'pg';
import {
  quoteIdentifier,
  resolveDatabaseTarget,
  sqliteUrl,
  type DatabaseConfig,
  type DatabaseProvider,
  type DatabaseTarget,
} from '../../../src/db/client.ts';

/** The PostgreSQL server the suite also runs against (set by .ci/run), if any. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? '';

/** Providers to run the shared suites against; PostgreSQL only with TEST_DATABASE_URL. */
export const PROVIDERS: readonly { provider: DatabaseProvider; available: boolean }[] = [
  { provider: 'sqlite', available: true },
  { provider: 'postgresql', available: TEST_DATABASE_URL !== '' },
];

/** Shown as the name of a skipped test, so a run without PostgreSQL says so. */
export const POSTGRES_SKIP_MESSAGE =
  'PostgreSQL suite skipped: set TEST_DATABASE_URL=postgresql://... to run it (.ci/run does)';

if (TEST_DATABASE_URL === '') console.warn(POSTGRES_SKIP_MESSAGE);

/** A fresh, empty database for one test: its own SQLite file, or its own PostgreSQL schema. */
export interface TestDatabase {
  readonly config: DatabaseConfig;
  readonly target: DatabaseTarget;
  /** Runs SQL outside Prisma (to check real rows); `?` placeholders for both providers. */
  query(
    sql: string,
    args?: readonly (string | number | null)[],
  ): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

/** Creates a {@link TestDatabase} for a provider. */
export async function createTestDatabase(provider: DatabaseProvider): Promise<TestDatabase> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-db-test-'));
  if (provider === 'sqlite') {
    const config: DatabaseConfig = { DATA_DIR: dataDir };
    const target = resolveDatabaseTarget(config);
    if (target.provider !== 'sqlite') throw new Error('unreachable');
    return {
      config,
      target,
      async query(sql, args = []) {
        const client = createClient({ url: sqliteUrl(target.file) });
        try {
          const result = await client.execute({ sql, args: [...args] });
          return result.rows.map((row) => ({ ...row }));
        } finally {
          client.close();
        }
      },
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('schema', schema);
  const config: DatabaseConfig = { DATA_DIR: dataDir, DATABASE_URL: url.toString() };
  const target = resolveDatabaseTarget(config);
  if (target.provider !== 'postgresql') throw new Error('unreachable');
  const withClient = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({
      connectionString: target.connectionString,
      options: `-c search_path=${quoteIdentifier(schema)}`,
    });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    config,
    target,
    query: (sql, args = []) =>
      withClient(async (client) => {
        let n = 0;
        const result = await client.query<Record<string, unknown>>(
          sql.replaceAll('?', () => `$${++n}`),
          [...args],
        );
        return result.rows;
      }),
    async cleanup() {
      await withClient((client) =>
        client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`),
      );
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A number from a COUNT(*) row (PostgreSQL returns bigint counts as text). */
export function countOf(rows: readonly Record<string, unknown>[]): number {
  return Number(rows[0]?.n);
}
