/**
 * The trainer's parts a bot process runs, from the configuration: the service the commands use,
 * the watcher that serves promoted versions, the reporter that edits progress messages, and (by
 * default) one embedded trainer worker. `npm start` calls this; so do the end-to-end tests.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ChatMessenger, TrainingService } from '../core/index.ts';
import type { Database } from '../db/database.ts';
import type { ModelRegistry } from '../ml/registry.ts';
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';
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
>;

/** The worker options a configuration gives. */
export function workerOptions(
  config: TrainerConfig,
  db: Pick<Database, 'trainingRuns' | 'modelVersions'>,
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
  };
}

/** The started trainer parts of a bot process. */
export interface TrainerRuntime {
  readonly training: TrainingService;
  readonly watcher: ServedWatcher;
  /** The embedded worker, unless disabled. */
  readonly worker?: TrainerWorker;
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
}

/**
 * Starts the trainer parts over an open database and the bot's model registry; serves the
 * promoted versions before returning.
 */
export async function startTrainerRuntime(
  config: TrainerConfig,
  db: Database,
  registry: ModelRegistry,
  logger: Logger,
  overrides: TrainerRuntimeOverrides = {},
): Promise<TrainerRuntime> {
  const log = logger.child({ part: 'trainer' });
  const training = createTrainingService({
    db,
    folders: { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
    limits: {
      maxEpochs: config.TRAIN_MAX_EPOCHS,
      maxBatch: config.TRAIN_MAX_BATCH,
      jobsPerInstructor: config.TRAIN_JOBS_PER_INSTRUCTOR,
    },
  });
  const watcher = watchServedVersions(
    db.modelVersions,
    registry,
    log,
    overrides.pollMs ?? config.MODEL_POLL_SECONDS * 1000,
  );
  await watcher.sync();
  const worker = config.TRAINER_EMBEDDED
    ? createDbWorker({
        ...workerOptions(config, db, log),
        ...(overrides.specDefaults ? { specDefaults: overrides.specDefaults } : {}),
        ...(overrides.pollMs === undefined ? {} : { pollMs: overrides.pollMs }),
        ...(overrides.onSpawn ? { onSpawn: overrides.onSpawn } : {}),
      })
    : undefined;
  let reporter: JobReporter | undefined;
  return {
    training,
    watcher,
    ...(worker ? { worker } : {}),
    startReporter(messengers) {
      reporter = startJobReporter({
        db,
        messengers,
        logger: log,
        ...(overrides.pollMs === undefined ? {} : { pollMs: overrides.pollMs }),
        ...(overrides.minEditMs === undefined ? {} : { minEditMs: overrides.minEditMs }),
      });
    },
    async close() {
      await worker?.close();
      await reporter?.stop();
      await watcher.stop();
    },
  };
}
