/**
 * Grad-CAM++ (Chattopadhyay et al. 2018): channel weights from positive gradients only, each
 * position weighted by alpha, so that several instances of a class all count.
 */
import * as tf from '@tensorflow/tfjs';
import { computeCam, type CamOptions, type CamResult, type ChannelWeighting } from './cam-base.ts';
import type { Container } from './graph.ts';

const EPSILON = 1e-7;

/**
 * w_k = sum_ij alpha^kc_ij ReLU(dS_c/dA^k_ij), with
 * alpha = g^2 / (2 g^2 + sum_ab A^k_ab g^3) (Chattopadhyay et al. 2018, Eqs. 7 and 19, with
 * the exponential of the score so that its higher derivatives are powers of the first one; as
 * pytorch-grad-cam computes it). alpha is 0 where the gradient is 0.
 */
export const gradCamPlusPlusWeights: ChannelWeighting = (activations, gradients) =>
  tf.tidy(() => {
    const g2 = tf.square(gradients);
    const g3 = tf.mul(g2, gradients);
    const sumA = tf.sum(activations, [0, 1], true);
    const alpha = tf.div(g2, tf.add(tf.add(tf.mul(g2, 2), tf.mul(sumA, g3)), EPSILON));
    const safeAlpha = tf.where(tf.notEqual(gradients, 0), alpha, tf.zerosLike(alpha));
    return tf.sum(tf.mul(safeAlpha, tf.relu(gradients)), [0, 1]);
  });

/**
 * The Grad-CAM++ map of one image.
 * @param x `[1, height, width, channels]`, preprocessed for the model.
 */
export function gradCamPlusPlus(
  model: Container,
  x: tf.Tensor4D,
  options: CamOptions = {},
): Promise<CamResult> {
  return computeCam(model, x, gradCamPlusPlusWeights, options);
}
