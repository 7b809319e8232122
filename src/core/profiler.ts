import type { LoadedModel } from '../ml/registry.ts';
import { profileModel, type LatencyOptions, type ModelProfile } from '../ml/stats.ts';
import { createTaskQueue, type TaskQueue } from './queue.ts';

/** Architecture statistics and measured speed of installed models, for `/arch` and `/compare`. */
export interface ModelProfiler {
  /**
   * The profile of model `id`: measured once per process, then served from memory (a model's
   * speed on this server does not change while it runs; measuring takes up to seconds).
   * @throws {UserError} `model.unknown`, `model.missing_files`.
   */
  profile(id: string): Promise<ModelProfile>;
}

/**
 * A {@link ModelProfiler} over a model registry. Measurements run one at a time in `queue` (TF.js
 * is single-threaded: two at once would each time the other too); pass the classifier's queue
 * (`ClassifierOptions.queue`) so that they never run beside a classification either, which
 * would slow the photo's answer and skew the figures. Concurrent requests for the same model
 * share one measurement, and a failed one is not remembered.
 *
 * @param queue where measurements wait their turn (default: a queue of their own).
 * @example
 * const queue = createTaskQueue(1);
 * const classifier = createClassifier(registry, { limits, queue });
 * const profiler = createModelProfiler(registry, {}, queue);
 * const { stats, latency } = await profiler.profile('lenet-mnist'); // stats.params.total === 44426
 */
export function createModelProfiler(
  registry: { get(id: string): Promise<LoadedModel> },
  latency: LatencyOptions = {},
  queue: TaskQueue = createTaskQueue(1),
): ModelProfiler {
  const cache = new Map<string, Promise<ModelProfile>>();
  return {
    profile(id) {
      let p = cache.get(id);
      if (!p) {
        p = queue.run(async () => profileModel(await registry.get(id), latency));
        cache.set(id, p);
        p.catch(() => cache.delete(id));
      }
      return p;
    },
  };
}
