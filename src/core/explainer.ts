import { explainImage, type Explanation, type ExplainOptions } from '../explain/explain-image.ts';
import type { ImageLimits } from '../imaging/decode.ts';
import type { LoadedModel } from '../ml/registry.ts';
import { createTaskQueue, type TaskQueue } from './queue.ts';

/**
 * Explains image bytes with a model (Grad-CAM, Grad-CAM++, saliency, SmoothGrad): the core's
 * door to `explain/`, as the classifier is to classification. Created with the other services
 * (`buildCoreServices`) and closed on shutdown, after the updates in flight, before the models
 * are disposed.
 */
export interface Explainer {
  /**
   * Explains `bytes` with the model `modelId`, after the explanations queued before it.
   * @throws {UserError} `model.unknown`, `model.missing_files`, the image errors of the decoder
   *   and the photo pipelines, and those of `explainImage` (`explain.unknown_class`...).
   * @throws {Error} `explainer closed` after {@link Explainer.close}.
   */
  explain(modelId: string, bytes: Uint8Array, options: ExplainOptions): Promise<Explanation>;
  /** Explanations running or waiting. */
  readonly pending: number;
  /**
   * Refuses new explanations and resolves once those running or waiting have finished, so that
   * no model is disposed under an explanation's activations and gradients.
   */
  close(): Promise<void>;
}

/** Options of {@link createExplainer}. */
export interface ExplainerOptions {
  readonly limits: ImageLimits;
  /**
   * The queue explanations wait in; default a queue of their own running one at a time: each
   * holds a model's activations and gradients, several times the memory of a classification.
   */
  readonly queue?: TaskQueue;
}

/**
 * An {@link Explainer} over a model registry, one explanation at a time.
 * @example
 * const explainer = createExplainer(registry, { limits });
 * const e = await explainer.explain('lenet-mnist', bytes, { method: 'gradcam' });
 * e.map; // Float32Array heat map over the model input, values in [0, 1]
 */
export function createExplainer(
  registry: { get(id: string): Promise<LoadedModel> },
  options: ExplainerOptions,
): Explainer {
  const queue = options.queue ?? createTaskQueue(1);
  let closed = false;
  return {
    explain(modelId, bytes, explainOptions) {
      if (closed) return Promise.reject(new Error('explainer closed'));
      return queue.run(async () =>
        explainImage(await registry.get(modelId), bytes, options.limits, explainOptions),
      );
    },
    get pending() {
      return queue.size;
    },
    close() {
      closed = true;
      return queue.idle();
    },
  };
}
