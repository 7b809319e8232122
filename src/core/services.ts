import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ImageLimits } from '../imaging/decode.ts';
import { renderProbabilityChart } from '../imaging/chart.ts';
import type { InferencePool } from '../inference/pool.ts';
import type { LatencyOptions } from '../ml/stats.ts';
import { createClassifier, type Classifier, type ModelCatalog } from './classifier.ts';
import type { CoreServices } from './command.ts';
import { createExplainer, type Explainer } from './explainer.ts';
import type { LabTestSets } from './lab-check.ts';
import type { Persistence } from './ports.ts';
import { createCachedProfiler, createModelProfiler, type ModelProfiler } from './profiler.ts';
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
  /**
   * The inference worker pool: classification, explanations and profiling run there, off the
   * event loop. Without it they run in this thread, one at a time (the CLI, unit tests).
   */
  readonly pool?: InferencePool;
  /** The lab's test sets for `/check` (issue 18). */
  readonly labTestSets?: LabTestSets;
}

/**
 * The core's services from the configuration, a model registry and the persistence ports: the
 * upload limits and default model from the config, and a classifier, an explainer and a caching
 * profiler (architecture statistics, measured speed).
 *
 * With a `pool`, all three run in its worker threads, and profiling in its lane of its own, so
 * that `/compare` never holds up a photo; a reload of a model in the pool forgets its profile.
 * Without one they share one in-process queue: the first `/compare` measures every model for
 * seconds, and a `/predict` sent meanwhile waits for the measurement in hand instead of running
 * beside it.
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
  let classifier: Classifier;
  let explainer: Explainer;
  let profiler: ModelProfiler;
  let renderChart: CoreServices['renderChart'] = renderProbabilityChart;
  const { pool } = parts;
  if (pool) {
    classifier = { classify: (modelId, bytes) => pool.classify(modelId, bytes, limits) };
    explainer = createPoolExplainer(pool, limits);
    const cached = createCachedProfiler((id) => pool.profile(id, parts.latency), {
      background: true,
    });
    pool.onReload((id) => cached.forget(id));
    renderChart = (input) => pool.chart(input);
    profiler = cached;
  } else {
    const modelQueue = createTaskQueue(1);
    classifier = createClassifier(parts.registry, { limits, queue: modelQueue });
    explainer = createExplainer(parts.registry, { limits, queue: modelQueue });
    profiler = createModelProfiler(parts.registry, parts.latency, modelQueue);
  }
  return {
    ...parts.persistence,
    models: parts.registry,
    classifier,
    explainer,
    profiler,
    renderChart,
    limits,
    defaultModel: parts.config.DEFAULT_MODEL,
    logger: parts.logger,
    ...(parts.labTestSets ? { labTestSets: parts.labTestSets } : {}),
    admins: parts.admins ?? [],
  };
}

/**
 * Measures every installed model in the background (the pool's profiling lane), one after
 * another, so that the first `/compare` finds the figures ready. Failures are logged, not thrown.
 */
export async function profileAllInBackground(services: CoreServices): Promise<void> {
  for (const meta of await services.models.list()) {
    try {
      await services.profiler.profile(meta.id);
    } catch (err) {
      services.logger.warn({ err, model: meta.id }, 'background profiling failed');
    }
  }
}

/**
 * An {@link Explainer} over the inference pool: each explanation runs in a worker thread with its
 * deadline; `close()` refuses new ones and waits for those in flight.
 */
function createPoolExplainer(pool: InferencePool, limits: ImageLimits): Explainer {
  let pending = 0;
  let closed = false;
  let idle: (() => void) | undefined;
  return {
    async explain(modelId, bytes, options) {
      if (closed) throw new Error('explainer closed');
      pending++;
      try {
        return await pool.explain(modelId, bytes, limits, options);
      } finally {
        pending--;
        if (pending === 0) idle?.();
      }
    },
    get pending() {
      return pending;
    },
    close() {
      closed = true;
      if (pending === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle = resolve;
      });
    },
  };
}
