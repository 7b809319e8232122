/**
 * What the trainer's end-to-end tests share: the job settings for the banded MNIST fixture, and
 * the core wired to the database, the model registry and the trainer runtime.
 */
import type { Logger } from 'pino';
import { createPrismaPersistence } from '../../../src/adapters/persistence/prisma-persistence.ts';
import type { Config } from '../../../src/config.ts';
import { buildCoreServices, createCore, type Core } from '../../../src/core/index.ts';
import type { Database } from '../../../src/db/database.ts';
import type { TrainerRuntime } from '../../../src/jobs/trainer-runtime.ts';
import type { ModelRegistry } from '../../../src/ml/registry.ts';
import { QUICK_LATENCY } from '../../unit/core/helpers.ts';

/**
 * Job settings for the fixture (`writeBandedIdx(dataDir, 'mnist', { train: 1200, test: 100 })`):
 * 30 batches of 30 to train on, no augmentation, outliers or calibration, so an epoch takes
 * seconds and reports several times.
 */
export const FIXTURE_SPEC = {
  augment: false,
  outliers: false,
  calibrate: false,
  workers: 1,
  batchSize: 30,
  validationSplit: 0.25,
  seed: 7,
  learningRate: 3e-3,
} as const;

/** The real core over SQLite/PostgreSQL, the registry and the trainer; no rate limit. */
export function trainerCore(
  config: Config,
  db: Database,
  registry: ModelRegistry,
  trainer: Pick<TrainerRuntime, 'training'>,
  logger: Logger,
): Core {
  return createCore(
    {
      ...buildCoreServices({
        config,
        registry,
        persistence: createPrismaPersistence(db),
        logger,
        latency: QUICK_LATENCY,
        admins: config.ADMINS,
      }),
      training: trainer.training,
    },
    { rateLimit: false },
  );
}
