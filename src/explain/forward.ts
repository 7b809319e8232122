/**
 * One model's forward pass as explanations need it: the class scores (pre-softmax), and the
 * activations of a chosen layer, which can also be replaced by a given tensor to differentiate
 * the scores with respect to them. Through a nested model this runs in two stages: the outer
 * graph up to the nested model, then the nested model's own graph (where the layer is), then the
 * rest of the outer graph.
 */
import type * as tf from '@tensorflow/tfjs';
import { evaluate, type Container, type LayerHook } from './graph.ts';
import { planScores, type ScorePlan } from './logits.ts';
import type { LayerChoice } from './target-layer.ts';

/** The forward pass of one model, optionally through one layer. */
export interface Forward {
  readonly scores: ScorePlan;
  /** Class scores `[batch, classes]` for the model input `x`. */
  run(x: tf.Tensor4D): tf.Tensor2D;
  /** The layer's activations and the class scores for `x`. */
  runWithActivations(x: tf.Tensor4D): { activations: tf.Tensor4D; scores: tf.Tensor2D };
  /** The class scores when the layer's activations are `a` (the rest computed from `x`). */
  runFromActivations(x: tf.Tensor4D, a: tf.Tensor4D): tf.Tensor2D;
}

/**
 * Prepares the forward pass of a single-input model, through `layer` when given.
 * Tensors: each call returns new tensors; call inside `tf.tidy`.
 * @throws {Error} for a model with several inputs.
 */
export function buildForward(model: Container, layer?: LayerChoice): Forward {
  const [input] = model.inputs;
  if (!input || model.inputs.length !== 1) {
    throw new Error(`model "${model.name}" has ${model.inputs.length} inputs; one is supported`);
  }
  const scores = planScores(model);
  const feedsOf = (x: tf.Tensor): Map<number, tf.Tensor> => new Map([[input.id, x]]);

  /** Evaluates `fetches` of `container`, descending `path` to the layer; captures or replaces it. */
  const through = (
    container: Container,
    fetches: readonly tf.SymbolicTensor[],
    feeds: Map<number, tf.Tensor>,
    path: readonly Container[],
    target: tf.SymbolicTensor,
    io: { replace?: tf.Tensor; captured?: tf.Tensor },
  ): tf.Tensor[] => {
    const [nested, ...rest] = path;
    if (!nested) {
      if (io.replace) return evaluate(fetches, new Map(feeds).set(target.id, io.replace));
      const [a, ...outs] = evaluate([target, ...fetches], feeds);
      if (a) io.captured = a;
      return outs;
    }
    const hook: LayerHook = (inputs) =>
      through(
        nested,
        nested.outputs,
        new Map(nested.inputs.map((s, i) => [s.id, inputs[i]!] as const)),
        rest,
        target,
        io,
      );
    return evaluate(fetches, feeds, new Map([[nested, hook]]));
  };

  const score = (t: tf.Tensor | undefined): tf.Tensor2D => {
    if (!t) throw new Error('the scores were not computed');
    return scores.finish(t);
  };

  return {
    scores,
    run: (x) => score(evaluate([scores.tensor], feedsOf(x))[0]),
    runWithActivations(x) {
      if (!layer) throw new Error('no layer chosen');
      const io: { captured?: tf.Tensor } = {};
      const [out] = through(model, [scores.tensor], feedsOf(x), layer.path, layer.tensor, io);
      if (!io.captured) throw new Error(`layer "${layer.name}" was not reached`);
      return { activations: io.captured as tf.Tensor4D, scores: score(out) };
    },
    runFromActivations(x, a) {
      if (!layer) throw new Error('no layer chosen');
      const [out] = through(model, [scores.tensor], feedsOf(x), layer.path, layer.tensor, {
        replace: a,
      });
      return score(out);
    },
  };
}
