import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { LatencyOptions } from '../ml/stats.ts';
import { createClassifier } from './classifier.ts';
import type { ModelCatalog } from './classifier.ts';
import type { CoreServices } from './command.ts';
import type { Persistence } from './ports.ts';
import { createModelProfiler } from './profiler.ts';
import { createTaskQueue } from './queue.ts';
import type { AdminKey } from './roles.ts';

/** What {@link buildCoreServices} assembles the services from. */
export interface CoreServiceParts {
  readonly config: Pick<Config, 'MAX_IMAGE_BYTES' | 'MAX_IMAGE_PIXELS' | 'DEFAULT_MODEL'>;
  /** The model registry (`ModelRegistry.fromConfig(config)`). */
  readonly registry: ModelCatalog;
  /** The database repositories, or `createMemoryStore()`. */
  readonly persistence: Persistence;
  readonly logger: Logger;
  /** Users the configuration names as admins (`config.ADMINS`). */
  readonly admins?: readonly AdminKey[];
  /** How `/arch` and `/compare` measure speed (default: 20 runs of one image, a batch of 1,000). */
  readonly latency?: LatencyOptions;
}

/**
 * The core's services from the configuration, a model registry and the persistence ports: the
 * upload limits and default model from the config, and a queued classifier and a caching
 * profiler (architecture statistics, measured speed) over the registry. The two share one queue:
 * the first `/compare` measures every model for seconds, and a `/predict` sent meanwhile waits
 * for the measurement in hand instead of running beside it.
 *
 * @example
 * const services = buildCoreServices({ config, registry, persistence: createMemoryStore(), logger });
 * const core = createCore(services, { rateLimit: { points: 12, durationSeconds: 60 } });
 */
export function buildCoreServices(parts: CoreServiceParts): CoreServices {
  const limits = {
    maxBytes: parts.config.MAX_IMAGE_BYTES,
    maxPixels: parts.config.MAX_IMAGE_PIXELS,
  };
  const modelQueue = createTaskQueue(1);
  return {
    ...parts.persistence,
    models: parts.registry,
    classifier: createClassifier(parts.registry, { limits, queue: modelQueue }),
    profiler: createModelProfiler(parts.registry, parts.latency, modelQueue),
    limits,
    defaultModel: parts.config.DEFAULT_MODEL,
    logger: parts.logger,
    admins: parts.admins ?? [],
  };
}
