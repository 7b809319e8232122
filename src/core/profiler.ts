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
  /** The profile of `id` if it has been measured already; never starts a measurement. */
  measured(id: string): ModelProfile | undefined;
  /**
   * Seconds until the profiles of `ids` are all measured, estimated from the measurements so far
   * (one per model still to measure, at their mean duration; 10 s each before any).
   */
  secondsUntilMeasured(ids: readonly string[]): number;
  /** Forgets the profile of `id` (a new model version was swapped in). */
  forget(id: string): void;
  /** True when the last measurement of `id` failed (the model cannot be loaded). */
  failed(id: string): boolean;
  /**
   * True when measurements run beside the photos (the pool's lane): `/compare` then answers at
   * once with what is measured so far instead of waiting.
   */
  readonly background: boolean;
}

/** Seconds one measurement is assumed to take before any has been timed. */
const FIRST_GUESS_S = 10;

/**
 * A caching {@link ModelProfiler} over `measure`: concurrent requests for the same model share
 * one measurement, a failed one is not remembered.
 *
 * @param measure measures one model (in a worker's lane, or in-process in a queue).
 * @example
 * const profiler = createCachedProfiler((id) => pool.profile(id, latency));
 */
export function createCachedProfiler(
  measure: (id: string) => Promise<ModelProfile>,
  options: { readonly background?: boolean } = {},
): ModelProfiler {
  const cache = new Map<string, Promise<ModelProfile>>();
  const done = new Map<string, ModelProfile>();
  const failures = new Set<string>();
  const durations: number[] = [];
  return {
    profile(id) {
      let p = cache.get(id);
      if (!p) {
        failures.delete(id);
        const started = performance.now();
        const measuring = measure(id);
        p = measuring;
        cache.set(id, measuring);
        measuring.then(
          (profile) => {
            // A version swapped in meanwhile made this figure stale: keep it out of the cache.
            if (cache.get(id) !== measuring) return;
            done.set(id, profile);
            durations.push((performance.now() - started) / 1000);
          },
          () => {
            cache.delete(id);
            failures.add(id);
          },
        );
      }
      return p;
    },
    background: options.background ?? false,
    measured: (id) => done.get(id),
    failed: (id) => failures.has(id),
    secondsUntilMeasured(ids) {
      const left = ids.filter((id) => !done.has(id)).length;
      const mean =
        durations.length === 0
          ? FIRST_GUESS_S
          : durations.reduce((a, b) => a + b, 0) / durations.length;
      return left === 0 ? 0 : Math.max(1, Math.ceil(left * mean));
    },
    forget(id) {
      cache.delete(id);
      done.delete(id);
    },
  };
}

/**
 * A {@link ModelProfiler} measuring in this thread, over a model registry. Measurements run one
 * at a time in `queue` (TF.js is single-threaded: two at once would each time the other too);
 * pass the classifier's queue (`ClassifierOptions.queue`) so that they never run beside a
 * classification either, which would slow the photo's answer and skew the figures. For the CLI
 * and tests; the bot profiles in the inference pool's own lane (`services.ts`).
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
  return createCachedProfiler((id) =>
    queue.run(async () => profileModel(await registry.get(id), latency)),
  );
}
