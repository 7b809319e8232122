import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Client as LibsqlClient, Config as LibsqlConfig } from '@libsql/client';
import { PrismaLibSql } from '@prisma/adapter-libsql';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { Config } from '../config.ts';
import { PrismaClient as SqlitePrismaClient } from '../../generated/sqlite/client.ts';
import { PrismaClient as PostgresPrismaClient } from '../../generated/postgresql/client.ts';

/** The configuration the database layer reads. */
export type DatabaseConfig = Pick<Config, 'DATA_DIR' | 'DATABASE_URL'>;

/** File name of the default SQLite database inside `DATA_DIR`. */
export const SQLITE_FILE_NAME = 'cnn-classroom.db';

/** How long a SQLite connection waits for another writer before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/** Where the data lives: an embedded SQLite file or a PostgreSQL database (and schema). */
export type DatabaseTarget =
  | { readonly provider: 'sqlite'; readonly file: string }
  | {
      readonly provider: 'postgresql';
      /** Connection string without the `schema` parameter (node-postgres does not know it). */
      readonly connectionString: string;
      /** The schema tables live in; `public` unless the URL says `?schema=name`. */
      readonly schema: string;
    };

/** One of the two supported providers. */
export type DatabaseProvider = DatabaseTarget['provider'];

/**
 * The Prisma client type the repositories are written against. Both generated clients come from
 * the same models (a test keeps the two schema files identical), so the PostgreSQL client is
 * used through the SQLite client's type, the smaller API of the two.
 */
export type AppPrismaClient = SqlitePrismaClient;

/**
 * Decides where the data lives from the configuration.
 *
 * @example
 * resolveDatabaseTarget({ DATA_DIR: '/srv/data' });
 * // { provider: 'sqlite', file: '/srv/data/cnn-classroom.db' }
 * resolveDatabaseTarget({ DATA_DIR: 'x', DATABASE_URL: 'postgresql://u:p@db/lab?schema=s1' });
 * // { provider: 'postgresql', connectionString: 'postgresql://u:p@db/lab', schema: 's1' }
 */
export function resolveDatabaseTarget(config: DatabaseConfig): DatabaseTarget {
  const url = config.DATABASE_URL;
  if (url === undefined || url === '') {
    return { provider: 'sqlite', file: path.resolve(config.DATA_DIR, SQLITE_FILE_NAME) };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? 'public';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema)) {
      throw new Error(`DATABASE_URL: schema must be a plain identifier, got "${schema}"`);
    }
    parsed.searchParams.delete('schema');
    return { provider: 'postgresql', connectionString: parsed.toString(), schema };
  }
  if (url.startsWith('file:')) {
    const file = url.startsWith('file://') ? fileURLToPath(url) : url.slice('file:'.length);
    return { provider: 'sqlite', file: path.resolve(file) };
  }
  throw new Error('DATABASE_URL must be a postgres://, postgresql:// or file: URL');
}

/** The libSQL URL of a SQLite file (percent-encoded, so any path works). */
export function sqliteUrl(file: string): string {
  return pathToFileURL(file).href;
}

/**
 * A node-postgres pool whose sessions resolve unqualified table names in the target schema
 * (the migration runner relies on that; Prisma qualifies names itself).
 */
export function createPgPool(target: Extract<DatabaseTarget, { provider: 'postgresql' }>): pg.Pool {
  return new pg.Pool({
    connectionString: target.connectionString,
    options: `-c search_path=${quoteIdentifier(target.schema)}`,
    max: 5,
  });
}

/** Double-quotes a PostgreSQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The libSQL adapter with every transaction started as `BEGIN IMMEDIATE`. Prisma runs upserts and
 * nested writes in transactions, and the adapter begins them DEFERRED: a transaction that has read
 * and then writes while another process holds the write lock gets SQLITE_BUSY at once, because
 * SQLite does not call the busy handler for that upgrade (it could deadlock). Taking the write
 * lock up front makes such a writer wait up to the busy timeout instead, like a single statement.
 */
class ImmediateLibSql extends PrismaLibSql {
  override createClient(config: LibsqlConfig): LibsqlClient {
    const client = super.createClient(config);
    const begin = client.transaction.bind(client);
    client.transaction = () => begin('write');
    return client;
  }
}

/** A Prisma client and how to close everything it opened. */
export interface DbClient {
  readonly target: DatabaseTarget;
  readonly prisma: AppPrismaClient;
  close(): Promise<void>;
}

/**
 * Creates the Prisma client for a target, with the provider's driver adapter (Prisma 7 has no
 * query engine binary: queries are compiled in WebAssembly and run by the driver). It does not
 * create tables: run `migrate()` from `migrate.ts` first, or use `openDatabase`.
 */
export function createDbClient(target: DatabaseTarget): DbClient {
  if (target.provider === 'sqlite') {
    const prisma = new SqlitePrismaClient({
      adapter: new ImmediateLibSql({
        url: sqliteUrl(target.file),
        timeout: SQLITE_BUSY_TIMEOUT_MS,
      }),
    });
    return { target, prisma, close: () => prisma.$disconnect() };
  }
  const pool = createPgPool(target);
  const client = new PostgresPrismaClient({
    adapter: new PrismaPg(pool, { schema: target.schema }),
  });
  return {
    target,
    // Same models, same generated API (see AppPrismaClient); only the provider differs.
    prisma: client as unknown as AppPrismaClient,
    close: async () => {
      await client.$disconnect();
      await pool.end();
    },
  };
}
