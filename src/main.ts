import { startAdapters, type RunningAdapter } from './adapters/index.ts';
import { createPrismaPersistence } from './adapters/persistence/prisma-persistence.ts';
import { loadConfig } from './config.ts';
import { buildCoreServices, createCore, profileAllInBackground } from './core/index.ts';
import { openDatabase } from './db/database.ts';
import { probeRedis } from './jobs/redis.ts';
import { startTrainerRuntime } from './jobs/trainer-runtime.ts';
import { logger } from './logger.ts';
import { scrubSecrets } from './secrets.ts';
import { initBackend } from './ml/backend.ts';
import { modelDataDirs } from './ml/imagenet.ts';
import { createTestSets } from './trainer/datasets/test-sets.ts';
import { InferencePool } from './inference/pool.ts';
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
  const config = loadConfig(); // the environment over .env
  logger.level = config.LOG_LEVEL ?? 'info';
  // A dead REDIS_URL fails start-up in seconds, before the models and workers are loaded.
  if (config.REDIS_URL !== undefined) {
    await probeRedis(config.REDIS_URL, {
      logger,
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000,
    });
  }
  const backend = await initBackend({ backend: config.TFJS_BACKEND });
  const registry = ModelRegistry.fromConfig(config);
  const metas = await registry.list();
  if (!metas.some((m) => m.id === config.DEFAULT_MODEL)) {
    logger.warn(
      { defaultModel: config.DEFAULT_MODEL, models: metas.map((m) => m.id) },
      'the default model is not installed: bare photos will be answered with model.unknown',
    );
  }
  // The models are loaded in the pool's workers (the default one now, not on the first photo);
  // this thread's registry only lists them.
  const pool = new InferencePool({
    modelsDir: config.MODELS_DIR,
    dataDirs: modelDataDirs(config),
    ...(config.INFERENCE_WORKERS === undefined ? {} : { workers: config.INFERENCE_WORKERS }),
    preload: metas.some((m) => m.id === config.DEFAULT_MODEL) ? [config.DEFAULT_MODEL] : [],
    maxQueue: config.INFERENCE_QUEUE_MAX,
    deadlines: {
      classify: config.PREDICT_DEADLINE_SECONDS * 1000,
      explain: config.EXPLAIN_DEADLINE_SECONDS * 1000,
    },
    logger: logger.child({ component: 'inference' }),
  });
  await pool.ready();
  const db = await openDatabase(config);
  logger.info({ provider: db.provider }, 'database ready');
  // Serves the promoted versions in the pool's workers (each loads and warms a new version
  // before switching), and runs the embedded trainer worker.
  const trainer = await startTrainerRuntime(
    config,
    db,
    {
      servedVersion: (id) => registry.servedVersion(id),
      async serve(id, version, dir) {
        await pool.serve(id, version, dir);
        // This thread holds no model of its own to swap: the registry records the version.
        await registry.serve(id, version, dir);
      },
    },
    logger,
  );
  // Answered updates older than a week are no longer needed to recognise a repeat.
  const pruned = await db.telegramUpdates.prune(new Date(Date.now() - 7 * 86_400_000));
  if (pruned > 0) logger.debug({ pruned }, 'old telegram updates pruned');
  const persistence = createPrismaPersistence(db, { imageQuotaBytes: config.IMAGE_QUOTA_BYTES });
  // issue 18: /check tests students' models on the lab's test sets found in the data folders
  const labTestSets = createTestSets(modelDataDirs(config));
  const services = {
    ...buildCoreServices({
      config,
      registry,
      persistence,
      logger,
      pool,
      labTestSets,
      admins: config.ADMINS,
    }),
    training: trainer.training,
  };
  const core = createCore(services, {
    rateLimit: { points: config.RATE_LIMIT_PER_MINUTE, durationSeconds: 60 },
    chatRateLimit: { points: config.RATE_LIMIT_PER_CHAT_PER_MINUTE, durationSeconds: 60 },
  });
  // The first /compare finds the figures ready; the lane never holds up a photo.
  void profileAllInBackground(services);
  const adapters: RunningAdapter[] = await startAdapters(config, core, logger, undefined, {
    telegramUpdates: db.telegramUpdates,
  });
  trainer.startReporter(adapters.flatMap((a) => (a.messenger ? [a.messenger] : [])));
  logger.info(
    {
      backend,
      models: metas.map((m) => m.id),
      adapters: adapters.map((a) => a.name),
      inferenceWorkers: pool.size,
    },
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
    const started = Date.now();
    // Adapters first: they stop taking updates and wait for those in hand, which the core (still
    // open) answers; closing the core first would turn away updates already fetched, and Telegram
    // would count them as answered. After the drain deadline, what is left is abandoned: the
    // Telegram updates among it stay unanswered in the database and are handled after restart.
    const stopAdapters = Promise.allSettled(adapters.map((a) => a.stop())).then(() => true);
    const deadline = new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), DRAIN_MS).unref(),
    );
    void Promise.race([stopAdapters, deadline])
      .then(async (stopped) => {
        // Rate-limited updates kept for the end of their window are answered now.
        const drained = await core.close(Math.max(0, DRAIN_MS - (Date.now() - started)));
        if (!stopped || !drained) {
          logger.warn({ inFlight: core.inFlight }, 'abandoning updates in flight');
        }
        logger.info({ metrics: core.metrics, pool: pool.stats }, 'dropped and delayed updates');
        // No model is disposed under an explanation's activations and gradients.
        if (drained) await services.explainer.close();
        // The embedded worker gives its job back to the queue (resumed on the next start).
        await trainer.close();
        await pool.close(1000);
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
  console.error(`start-up failed: ${scrubSecrets((e as Error).message)}`);
  process.exit(1);
});
