/**
 * The pre-softmax class scores of a model. Explanations differentiate these, not the
 * probabilities: a confident softmax saturates (its gradient vanishes as p -> 1), which gives
 * an all-zero map (Selvaraju et al. 2017, Sec. 3, use the score "before the softmax").
 */
import * as tf from '@tensorflow/tfjs';
import type { Container, Layer } from './graph.ts';

/**
 * How the scores are obtained:
 * - `pre-softmax`: the input of the final softmax (an `Activation('softmax')` or `Softmax`
 *   layer), or the final softmax layer's linear part (a `Dense` layer's kernel and bias applied
 *   by hand);
 * - `output`: the model has no final softmax; its outputs are the scores;
 * - `log-probabilities`: the softmax is fused into a layer whose linear part is not known here;
 *   log p_c = z_c - logsumexp(z) does not saturate, though its gradient mixes in the other classes.
 */
export type ScoreKind = 'pre-softmax' | 'output' | 'log-probabilities';

/** Where the scores are read in the graph, and how they are finished. */
export interface ScorePlan {
  readonly kind: ScoreKind;
  /** The symbolic tensor to compute (in the model's own graph). */
  readonly tensor: tf.SymbolicTensor;
  /** Turns the value of {@link tensor} into the scores, `[batch, classes]`. */
  finish(value: tf.Tensor): tf.Tensor2D;
}

/** Layers that change only the shape (or nothing, at inference) on the way to the output. */
const PASS_THROUGH = new Set([
  'Reshape',
  'Flatten',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
]);

const flatten = (t: tf.Tensor): tf.Tensor2D => t.reshape<tf.Tensor2D>([t.shape[0] ?? 1, -1]);

function activationOf(layer: Layer): unknown {
  return (layer.getConfig() as { activation?: unknown }).activation;
}

function singleInput(sym: tf.SymbolicTensor): tf.SymbolicTensor | undefined {
  const inputs = sym.sourceLayer.inboundNodes[sym.nodeIndex]?.inputTensors ?? [];
  return inputs.length === 1 ? inputs[0] : undefined;
}

/**
 * Finds the pre-softmax scores of a single-output classifier, walking back from its output
 * through shape-only layers (MobileNet: `conv_preds` -> `act_softmax` -> `reshape_2`).
 *
 * @example
 * const plan = planScores(lenet); // plan.kind === 'pre-softmax': the 'probs' Dense layer's linear part
 */
export function planScores(model: Container): ScorePlan {
  const output = model.outputs[0];
  if (!output) throw new Error(`model "${model.name}" has no output`);
  let sym = output;
  for (;;) {
    const layer = sym.sourceLayer;
    const cls = layer.getClassName();
    const input = singleInput(sym);
    const activation = activationOf(layer);
    if (input && (PASS_THROUGH.has(cls) || (cls === 'Activation' && activation === 'linear'))) {
      sym = input;
      continue;
    }
    if (input && ((cls === 'Activation' && activation === 'softmax') || cls === 'Softmax')) {
      return { kind: 'pre-softmax', tensor: input, finish: flatten };
    }
    if (input && cls === 'Dense' && activation === 'softmax') {
      return { kind: 'pre-softmax', tensor: input, finish: (x) => denseLinear(layer, x) };
    }
    if (activation === 'softmax') {
      return {
        kind: 'log-probabilities',
        tensor: output,
        finish: (p) => tf.log(tf.maximum(flatten(p), 1e-30)) as tf.Tensor2D,
      };
    }
    return { kind: 'output', tensor: output, finish: flatten };
  }
}

/** x · kernel + bias of a Dense layer, with the layer's own weights (no copy). */
function denseLinear(layer: Layer, x: tf.Tensor): tf.Tensor2D {
  const [kernel, bias] = layer.getWeights();
  if (!kernel) throw new Error(`layer "${layer.name}" has no kernel`);
  const z: tf.Tensor2D = tf.matMul(flatten(x), kernel);
  return bias ? tf.add<tf.Tensor2D>(z, bias) : z;
}
