/**
 * A trainer worker on its own (`npm run worker`, `bin/cnn-classroom worker`), for a machine
 * other than the bot's (a GPU server): with `REDIS_URL` it takes jobs from the BullMQ queue,
 * otherwise it leases them from the shared database as the embedded worker does. Either way
 * each job runs in a fresh child process and `training_runs` stays the record of truth.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { startBullWorker } from './bull.ts';
import { createDbWorker } from './db-worker.ts';
import { workerOptions, type TrainerConfig } from './trainer-runtime.ts';

/** A started standalone worker. */
export interface StandaloneWorker {
  readonly kind: 'bullmq' | 'database';
  /** Waits for the job in progress to be given back, then closes the connections. */
  close(): Promise<void>;
}

/**
 * Starts the worker the configuration asks for.
 * @example
 * const w = await startStandaloneWorker(loadConfig(), logger);
 * process.once('SIGTERM', () => void w.close());
 */
export async function startStandaloneWorker(
  config: TrainerConfig & Pick<Config, 'DATABASE_URL' | 'REDIS_URL'>,
  logger: Logger,
): Promise<StandaloneWorker> {
  const db = await openDatabase(config);
  const options = workerOptions(config, db, logger);
  if (config.REDIS_URL !== undefined) {
    const worker = await startBullWorker({
      ...options,
      redisUrl: config.REDIS_URL,
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000,
    }).catch(async (e: unknown) => {
      await db.close();
      throw e;
    });
    return {
      kind: 'bullmq',
      async close() {
        await worker.close();
        await db.close();
      },
    };
  }
  const worker = createDbWorker(options);
  return {
    kind: 'database',
    async close() {
      await worker.close();
      await db.close();
    },
  };
}
