/**
 * The trainer's parts a bot process runs, from the configuration: the service the commands use,
 * the watcher that serves promoted versions, the reporter that edits progress messages, and (by
 * default) one embedded trainer worker. `npm start` calls this; so do the end-to-end tests.
 */
import type { Logger } from 'pino';
import { createPrismaPersistence } from '../adapters/persistence/prisma-persistence.ts';
import type { Config } from '../config.ts';
import type { ChatMessenger, TrainingService } from '../core/index.ts';
import type { Database } from '../db/database.ts';
import type { ModelRegistry } from '../ml/registry.ts';
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';
import { startBullProducer, startBullWorker, type BullProducer } from './bull.ts';
import type { JobProgress } from './protocol.ts';
import { createDbWorker, type TrainerWorker, type TrainerWorkerOptions } from './db-worker.ts';
import { startJobReporter, type JobReporter } from './reporter.ts';
import { watchServedVersions, type ServedWatcher } from './served-watcher.ts';
import { createTrainingService } from './training-service.ts';

/** The configuration the trainer reads. */
export type TrainerConfig = Pick<
  Config,
  | 'DATA_DIR'
  | 'MODELS_DIR'
  | 'CNN_SHARED_DATA'
  | 'TRAIN_MAX_EPOCHS'
  | 'TRAIN_MAX_BATCH'
  | 'TRAIN_JOBS_PER_INSTRUCTOR'
  | 'TRAIN_LEASE_SECONDS'
  | 'TRAIN_MAX_ATTEMPTS'
  | 'TRAINER_EMBEDDED'
  | 'MODEL_POLL_SECONDS'
  | 'MODEL_VERSIONS_KEEP'
  | 'REDIS_URL'
  | 'REDIS_CONNECT_TIMEOUT_SECONDS'
  | 'CLASS_MIN_PHOTOS'
  | 'MAX_IMAGE_BYTES'
  | 'MAX_IMAGE_PIXELS'
>;

/** The worker options a configuration gives. */
export function workerOptions(
  config: TrainerConfig,
  db: Database,
  logger: Logger,
): TrainerWorkerOptions {
  return {
    trainingRuns: db.trainingRuns,
    modelVersions: db.modelVersions,
    folders: { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
    ...(config.CNN_SHARED_DATA === undefined ? {} : { sharedDataDir: config.CNN_SHARED_DATA }),
    logger,
    leaseMs: config.TRAIN_LEASE_SECONDS * 1000,
    maxAttempts: config.TRAIN_MAX_ATTEMPTS,
    // issue 16: `with=class` jobs read the class's labelled photos
    classData: createPrismaPersistence(db).classData,
    imageLimits: { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS },
    classMinPhotos: config.CLASS_MIN_PHOTOS,
    ...(config.MODEL_VERSIONS_KEEP === undefined
      ? {}
      : { versionsKeep: config.MODEL_VERSIONS_KEEP }),
  };
}

/** The started trainer parts of a bot process. */
export interface TrainerRuntime {
  readonly training: TrainingService;
  readonly watcher: ServedWatcher;
  /** The embedded worker, unless disabled. */
  readonly worker?: Pick<TrainerWorker, 'owner' | 'close'>;
  /** Starts reporting progress through the adapters' messengers (once they are started). */
  startReporter(messengers: readonly ChatMessenger[]): void;
  close(): Promise<void>;
}

/** Options for tests: faster polls, spec settings for a tiny fixture. */
export interface TrainerRuntimeOverrides {
  readonly specDefaults?: Partial<TrainingJobSpecInput>;
  readonly pollMs?: number;
  readonly minEditMs?: number;
  readonly onSpawn?: (jobId: number, pid: number) => void;
  /** BullMQ's key prefix in Redis (tests: one per run, on a shared server). */
  readonly bullPrefix?: string;
}

/**
 * The service the instructor commands use, over `db` with the configured limits; with `REDIS_URL`
 * set, each queued job also goes to BullMQ (the workers then take jobs only from there), and
 * `producer` must be closed by the caller. The bot's runtime and the command line both use it.
 * @param o.onProgress BullMQ's progress events (run id, progress); o.bullPrefix its key prefix.
 * @throws {Error} within the connect timeout when `REDIS_URL` is set and Redis is unreachable.
 */
export async function startTrainingService(
  config: TrainerConfig,
  db: Database,
  logger: Logger,
  o: {
    readonly onProgress?: (runId: number, progress: JobProgress) => void;
    readonly bullPrefix?: string;
  } = {},
): Promise<{ training: TrainingService; producer?: BullProducer }> {
  const producer =
    config.REDIS_URL === undefined
      ? undefined
      : await startBullProducer(config.REDIS_URL, o.onProgress ?? (() => undefined), {
          logger,
          connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000,
          ...(o.bullPrefix === undefined ? {} : { prefix: o.bullPrefix }),
        });
  const training = createTrainingService({
    db,
    folders: { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
    limits: {
      maxEpochs: config.TRAIN_MAX_EPOCHS,
      maxBatch: config.TRAIN_MAX_BATCH,
      jobsPerInstructor: config.TRAIN_JOBS_PER_INSTRUCTOR,
      classMinPhotos: config.CLASS_MIN_PHOTOS,
    },
    classData: createPrismaPersistence(db).classData,
    ...(producer ? { onEnqueued: (run) => producer.add(run) } : {}),
  });
  return producer ? { training, producer } : { training };
}

/**
 * Sends to BullMQ the jobs still queued or running in the database that BullMQ does not hold:
 * those queued through the database queue (no `REDIS_URL`) before the switch to Redis, which no
 * BullMQ worker would ever see otherwise. A row still leased by a live database-queue worker is
 * taken over only once its lease has ended (the BullMQ worker delays it till then). Logged in one
 * line; a failure is logged and does not stop the start (the jobs are sent at the next start).
 */
async function sendDatabaseQueueToBull(
  db: Database,
  producer: BullProducer,
  log: Logger,
): Promise<void> {
  try {
    const pending = await db.trainingRuns.listForDisplay(0);
    const sent = await producer.addMissing(pending);
    if (sent.length > 0)
      log.info({ jobs: sent }, 'jobs queued in the database before REDIS_URL sent to BullMQ');
  } catch (e) {
    log.error({ err: e }, 'could not send the database-queued jobs to BullMQ');
  }
}

/**
 * Starts the trainer parts over an open database and the bot's model registry; serves the
 * promoted versions before returning.
 */
export async function startTrainerRuntime(
  config: TrainerConfig,
  db: Database,
  registry: Pick<ModelRegistry, 'serve' | 'servedVersion'>,
  logger: Logger,
  overrides: TrainerRuntimeOverrides = {},
): Promise<TrainerRuntime> {
  const log = logger.child({ part: 'trainer' });
  let reporter: JobReporter | undefined;
  // Scaled out: jobs also go to BullMQ, whose progress events reach the reporter at once.
  const { training, producer } = await startTrainingService(config, db, log, {
    onProgress: (runId, p) => reporter?.progress(runId, p),
    ...(overrides.bullPrefix === undefined ? {} : { bullPrefix: overrides.bullPrefix }),
  });
  if (producer) await sendDatabaseQueueToBull(db, producer, log);
  const watcher = watchServedVersions(
    db.modelVersions,
    registry,
    log,
    overrides.pollMs ?? config.MODEL_POLL_SECONDS * 1000,
    { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
  );
  await watcher.sync();
  const options: TrainerWorkerOptions = {
    ...workerOptions(config, db, log),
    ...(overrides.specDefaults ? { specDefaults: overrides.specDefaults } : {}),
    ...(overrides.pollMs === undefined ? {} : { pollMs: overrides.pollMs }),
    ...(overrides.onSpawn ? { onSpawn: overrides.onSpawn } : {}),
  };
  // With Redis the bot's own worker takes BullMQ jobs like the others; without, it leases rows.
  const worker = !config.TRAINER_EMBEDDED
    ? undefined
    : config.REDIS_URL === undefined
      ? createDbWorker(options)
      : await startBullWorker({
          ...options,
          redisUrl: config.REDIS_URL,
          connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000,
          ...(overrides.bullPrefix === undefined ? {} : { prefix: overrides.bullPrefix }),
        });
  return {
    training,
    watcher,
    ...(worker ? { worker } : {}),
    startReporter(messengers) {
      reporter = startJobReporter({
        db,
        folders: { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
        messengers,
        logger: log,
        ...(overrides.pollMs === undefined ? {} : { pollMs: overrides.pollMs }),
        ...(overrides.minEditMs === undefined ? {} : { minEditMs: overrides.minEditMs }),
      });
    },
    async close() {
      await worker?.close();
      await reporter?.stop();
      await producer?.close();
      await watcher.stop();
    },
  };
}
