/** Grad-CAM (Selvaraju et al. 2017): each channel weighted by its gradient's spatial mean. */
import * as tf from '@tensorflow/tfjs';
import { computeCam, type CamOptions, type CamResult, type ChannelWeighting } from './cam-base.ts';
import type { Container } from './graph.ts';

/**
 * alpha_k = 1/Z sum_ij dS_c/dA^k_ij (Selvaraju et al. 2017, Eq. 1).
 * @param gradients `[height, width, channels]`.
 * @returns `[channels]`.
 */
export const gradCamWeights: ChannelWeighting = (_activations, gradients) =>
  tf.mean(gradients, [0, 1]);

/**
 * The Grad-CAM map of one image.
 * @param x `[1, height, width, channels]`, preprocessed for the model.
 * @example
 * const { map, layer, classIndex } = await gradCam(model, x, { target: { kind: 'index', index: 101 } });
 */
export function gradCam(
  model: Container,
  x: tf.Tensor4D,
  options: CamOptions = {},
): Promise<CamResult> {
  return computeCam(model, x, gradCamWeights, options);
}
