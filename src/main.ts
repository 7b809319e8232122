import { startAdapters, type RunningAdapter } from './adapters/index.ts';
import { createPrismaPersistence } from './adapters/persistence/prisma-persistence.ts';
import { loadConfig, loadDotEnv } from './config.ts';
import { buildCoreServices, createCore } from './core/index.ts';
import { openDatabase } from './db/database.ts';
import { startTrainerRuntime } from './jobs/trainer-runtime.ts';
import { logger } from './logger.ts';
import { initBackend } from './ml/backend.ts';
import { ModelRegistry } from './ml/registry.ts';

/** How long shutdown waits for updates in flight before abandoning them. */
const DRAIN_MS = 10_000;

/**
 * `npm start`: reads the configuration (environment and `.env`), starts the TF.js backend and
 * the model registry, builds the core and starts the configured adapters (the local web chat when
 * no bot token is set). SIGINT / SIGTERM shut down gracefully: adapters stop accepting, updates in
 * flight get up to 10 s to finish, then models and storage are closed. A second signal exits at
 * once. A fatal start-up error exits with code 1.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  logger.level = config.LOG_LEVEL;
  const backend = await initBackend();
  const registry = ModelRegistry.fromConfig(config);
  const db = await openDatabase(config);
  logger.info({ provider: db.provider }, 'database ready');
  // Serves the promoted versions (loaded on first use), and runs the embedded trainer worker.
  const trainer = await startTrainerRuntime(config, db, registry, logger);
  const metas = await registry.list();
  if (!metas.some((m) => m.id === config.DEFAULT_MODEL)) {
    logger.warn(
      { defaultModel: config.DEFAULT_MODEL, models: metas.map((m) => m.id) },
      'the default model is not installed: bare photos will be answered with model.unknown',
    );
  } else {
    await registry.get(config.DEFAULT_MODEL); // load now, not on the first photo
  }
  const persistence = createPrismaPersistence(db);
  const core = createCore(
    {
      ...buildCoreServices({ config, registry, persistence, logger, admins: config.ADMINS }),
      training: trainer.training,
    },
    {
      rateLimit: { points: config.RATE_LIMIT_PER_MINUTE, durationSeconds: 60 },
    },
  );
  const adapters: RunningAdapter[] = await startAdapters(config, core, logger);
  trainer.startReporter(adapters.flatMap((a) => (a.messenger ? [a.messenger] : [])));
  logger.info(
    { backend, models: metas.map((m) => m.id), adapters: adapters.map((a) => a.name) },
    'ready',
  );
  console.log(`backend: ${backend.name}${backend.gpu ? ' (GPU)' : ''}`);
  for (const a of adapters) {
    console.log(a.url ? `${a.name} chat: ${a.url}` : `${a.name} adapter running`);
  }

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, inFlight: core.inFlight }, 'shutting down');
    const stopAdapters = Promise.allSettled(adapters.map((a) => a.stop()));
    void core
      .close(DRAIN_MS)
      .then(async (drained) => {
        if (!drained) logger.warn({ inFlight: core.inFlight }, 'abandoning updates in flight');
        // Adapters wait for their requests; after the drain deadline do not wait for them.
        if (drained) await stopAdapters;
        // The embedded worker gives its job back to the queue (resumed on the next start).
        await trainer.close();
        await registry.dispose();
        await db.close();
      })
      .catch((e: unknown) => logger.error({ err: e }, 'error while shutting down'))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((e: unknown) => {
  logger.fatal({ err: e }, 'start-up failed');
  console.error(`start-up failed: ${(e as Error).message}`);
  process.exit(1);
});
