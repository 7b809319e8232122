import type { ImageLimits } from '../imaging/decode.ts';
import { classifyImage, type Classification } from '../ml/classify.ts';
import type { ModelMeta } from '../ml/model-meta.ts';
import type { LoadedModel } from '../ml/registry.ts';
import { createTaskQueue, type TaskQueue } from './queue.ts';

/** The installed models, as the core lists them (`ModelRegistry` satisfies this). */
export interface ModelCatalog {
  /** Metadata of every installed model, sorted by id. */
  list(): Promise<ModelMeta[]>;
  /**
   * Loads (once) the model `id`, for commands that need its layers (explanations).
   * @throws {UserError} `model.unknown`, `model.missing_files`.
   */
  get(id: string): Promise<LoadedModel>;
  /**
   * Runs `fn` with the served version of model `id`, which is not disposed before `fn` ends
   * even when a promotion replaces it meanwhile.
   */
  use<T>(id: string, fn: (loaded: LoadedModel) => Promise<T>): Promise<T>;
  /** The version of model `id` served now (`0`: the shipped one). */
  servedVersion(id: string): string;
}

/** A classification and the metadata of the model that made it. */
export interface Prediction {
  readonly meta: ModelMeta;
  /** The exact model version that answered. */
  readonly version: string;
  readonly result: Classification;
}

/** Classifies image bytes with a model; the core's only door to TF.js. */
export interface Classifier {
  /**
   * @throws {UserError} `model.unknown`, `model.missing_files`, and the image errors of
   *   `src/imaging/decode.ts` and the photo pipelines (`image.pdf`, `image.no_ink`,
   *   `image.no_garment`...).
   */
  classify(modelId: string, bytes: Uint8Array): Promise<Prediction>;
}

/** Options of {@link createClassifier}. */
export interface ClassifierOptions {
  readonly limits: ImageLimits;
  /** Classifications allowed to run at once (default 1: TF.js is single-threaded). */
  readonly concurrency?: number;
  /**
   * The queue classifications wait in, instead of one of their own (`concurrency` is then
   * ignored): shared with the profiler, so that a speed measurement never runs beside them.
   */
  readonly queue?: TaskQueue;
  /** How many classes `topK` holds (default 3). */
  readonly topK?: number;
}

/**
 * A {@link Classifier} over a model registry, with a queue so that many photos arriving at once
 * are classified one at a time (bounded memory, fair order).
 *
 * @example
 * const classifier = createClassifier(new ModelRegistry('models'), { limits });
 * const { result } = await classifier.classify('lenet-mnist', bytes); // result.label === '7'
 */
export function createClassifier(
  registry: Pick<ModelCatalog, 'use'>,
  options: ClassifierOptions,
): Classifier {
  const queue = options.queue ?? createTaskQueue(options.concurrency ?? 1);
  return {
    classify: (modelId, bytes) =>
      queue.run(async () => {
        return registry.use(modelId, async (loaded) => {
          const result = await classifyImage(loaded, bytes, options.limits, options.topK ?? 3);
          return { meta: loaded.meta, version: loaded.version, result };
        });
      }),
  };
}
