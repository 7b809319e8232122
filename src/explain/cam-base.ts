/**
 * The shared base of the class activation map methods (Grad-CAM and Grad-CAM++): activations A
 * of a spatial layer, gradients dS_c/dA of the pre-softmax class score, per-channel weights from
 * those (the one step the methods differ in), then L = ReLU(sum_k w_k A^k) (Selvaraju et al.
 * 2017, Eq. 2), normalized to [0, 1].
 */
import * as tf from '@tensorflow/tfjs';
import type { Container } from './graph.ts';
import { buildForward } from './forward.ts';
import { normalizeMap, type NormalizedMap } from './heat-map.ts';
import type { ScoreKind } from './logits.ts';
import { findTargetLayer } from './target-layer.ts';
import { resolveClassIndex, TOP_PREDICTION, type ClassTarget } from './targets.ts';

/**
 * The channel weighting of a CAM method: activations and gradients of one example,
 * `[height, width, channels]` each, to one weight per channel, `[channels]`.
 */
export type ChannelWeighting = (activations: tf.Tensor3D, gradients: tf.Tensor3D) => tf.Tensor1D;

/** Options of {@link computeCam}. */
export interface CamOptions {
  /** Layer name (see `findTargetLayer`); default: the last layer with a spatial output. */
  readonly layer?: string;
  /** Class to explain; default the top prediction. */
  readonly target?: ClassTarget;
  /** Class names, for a target given by name. */
  readonly classNames?: readonly string[];
}

/** What a class activation map computation returns. */
export interface CamResult {
  /** The map at the layer's resolution, normalized to [0, 1]. */
  readonly map: NormalizedMap;
  /** The layer the map was computed at. */
  readonly layer: string;
  readonly classIndex: number;
  /** Softmax of the scores: every class's probability. */
  readonly probabilities: Float32Array;
  readonly scoreKind: ScoreKind;
}

/**
 * Computes a class activation map of one image with the given channel weighting.
 *
 * @param x the model input, `[1, height, width, channels]`, preprocessed as the model expects.
 * Tensors: creates and disposes its own; `tf.memory().numTensors` is unchanged afterwards.
 * @throws {UserError} `argument.invalid` for an unknown layer or class.
 */
export async function computeCam(
  model: Container,
  x: tf.Tensor4D,
  weighting: ChannelWeighting,
  options: CamOptions = {},
): Promise<CamResult> {
  const layer = findTargetLayer(model, options.layer);
  const forward = buildForward(model, layer);
  let classIndex = 0;
  const [cam, probs] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
    const { activations, scores } = forward.runWithActivations(x);
    classIndex = resolveClassIndex(
      options.target ?? TOP_PREDICTION,
      options.classNames ?? [],
      scores.dataSync(),
    );
    const c = classIndex;
    const score = (a: tf.Tensor): tf.Scalar =>
      forward
        .runFromActivations(x, a as tf.Tensor4D)
        .slice([0, c], [1, 1])
        .sum();
    const gradients = tf.grad(score)(activations) as tf.Tensor4D;
    const a3 = activations.squeeze<tf.Tensor3D>([0]);
    const g3 = gradients.squeeze<tf.Tensor3D>([0]);
    const weights = weighting(a3, g3);
    const map = tf.relu(tf.sum(tf.mul(a3, weights), -1));
    return [map, tf.softmax(scores).squeeze([0])];
  });
  const [mapData, probData] = await Promise.all([cam.data(), probs.data()]);
  tf.dispose([cam, probs]);
  const [h, w] = layer.shape;
  return {
    map: normalizeMap(mapData, w, h),
    layer: layer.name,
    classIndex,
    probabilities: probData as Float32Array,
    scoreKind: forward.scores.kind,
  };
}
