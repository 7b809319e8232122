/**
 * `npm run worker`: a trainer worker on its own, for another machine (a GPU server) sharing the
 * bot's database (`DATABASE_URL`) and, when set, its Redis (`REDIS_URL`: jobs through BullMQ).
 * SIGINT / SIGTERM give the job in progress back to the queue (it resumes from its checkpoint)
 * and exit.
 */
import { loadConfig } from './config.ts';
import { probeRedis } from './jobs/redis.ts';
import { startStandaloneWorker } from './jobs/standalone-worker.ts';
import { logger } from './logger.ts';
import { initBackend } from './ml/backend.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  logger.level = config.LOG_LEVEL ?? 'info';
  if (config.REDIS_URL !== undefined) {
    await probeRedis(config.REDIS_URL, {
      logger,
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000,
    });
  }
  // Jobs run in child processes; this shows which engine they will find here.
  const backend = await initBackend();
  const worker = await startStandaloneWorker(config, logger);
  console.log(
    `trainer worker (${worker.kind === 'bullmq' ? 'BullMQ on Redis' : 'database queue'}), backend: ${backend.name}${backend.gpu ? ' (GPU)' : ''}`,
  );
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    void worker
      .close()
      .catch((e: unknown) => logger.error({ err: e }, 'error while stopping the worker'))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((e: unknown) => {
  logger.fatal({ err: e }, 'worker start-up failed');
  console.error(`worker start-up failed: ${(e as Error).message}`);
  process.exit(1);
});
