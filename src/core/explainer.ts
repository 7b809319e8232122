import { explainImage, type ExplainOptions, type Explanation } from '../explain/explain-image.ts';
import type { ImageLimits } from '../imaging/decode.ts';
import type { LoadedModel } from '../ml/registry.ts';
import { createTaskQueue, type TaskQueue } from './queue.ts';

/** Explains a model's answer on image bytes (`/gradcam`, `/saliency`). */
export interface Explainer {
  /**
   * @throws {UserError} `model.unknown`, `model.missing_files`, the image errors of
   *   `src/imaging/decode.ts`, `argument.invalid` for an unknown class or layer; in the pool
   *   also `server.busy` and `job.timeout`.
   */
  explain(modelId: string, bytes: Uint8Array, options: ExplainOptions): Promise<Explanation>;
}

/**
 * An {@link Explainer} in this thread over a model registry, one explanation at a time (each
 * holds a model's activations and gradients). For the CLI and tests; the bot explains in the
 * inference pool (`services.ts`).
 *
 * @example
 * const explainer = createExplainer(registry, { limits });
 * const e = await explainer.explain('lenet-mnist', bytes, { method: 'gradcam' });
 */
export function createExplainer(
  registry: { get(id: string): Promise<LoadedModel> },
  options: { readonly limits: ImageLimits; readonly queue?: TaskQueue },
): Explainer {
  const queue = options.queue ?? createTaskQueue(1);
  return {
    explain: (modelId, bytes, explainOptions) =>
      queue.run(async () =>
        explainImage(await registry.get(modelId), bytes, options.limits, explainOptions),
      ),
  };
}
