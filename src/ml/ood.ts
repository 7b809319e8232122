import * as tf from '@tensorflow/tfjs';
import { Matrix, inverse } from 'ml-matrix';
import type { OodCriterion } from './model-meta.ts';

/**
 * Builds a model that returns `[features, probabilities]` for a classifier: the activations of
 * `featureLayer` (float32 `[batch, features]`) and the softmax output (`[batch, classes]`).
 * Shares the classifier's weights: dispose neither while the other is in use.
 *
 * @throws {Error} when the layer does not exist or its output is not `[batch, features]`.
 */
export function buildFeatureModel(model: tf.LayersModel, featureLayer: string): tf.LayersModel {
  const layer = model.getLayer(featureLayer);
  const out = layer.output as tf.SymbolicTensor;
  if (out.shape.length !== 2) {
    throw new Error(
      `feature layer ${featureLayer} has output shape [${out.shape.join(', ')}], expected [batch, features]`,
    );
  }
  return tf.model({ inputs: model.inputs, outputs: [out, model.outputs[0]!] });
}

/** Class-conditional Gaussian statistics of the features, with a shared covariance. */
export interface GaussianFit {
  /** `[classes][features]`. */
  readonly means: number[][];
  /** Inverse shared covariance, `[features * features]` row-major. */
  readonly precision: number[];
}

/**
 * Fits class means and the inverse of a shared (tied) covariance of feature vectors, the
 * generative classifier of Lee et al. 2018, "A Simple Unified Framework for Detecting
 * Out-of-Distribution Samples and Adversarial Attacks" (eq. 1). A small ridge (1e-3 of the mean
 * variance) keeps the covariance invertible when features are dead ReLUs.
 *
 * @param features float32 `[n * dim]` row-major.
 * @param labels class index of each row.
 */
export function fitGaussian(
  features: Float32Array,
  labels: ArrayLike<number>,
  dim: number,
  classes: number,
): GaussianFit {
  const n = labels.length;
  const means = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    const c = labels[i] ?? 0;
    counts[c] = (counts[c] ?? 0) + 1;
    const m = means[c]!;
    for (let j = 0; j < dim; j++) m[j] = (m[j] ?? 0) + (features[i * dim + j] ?? 0);
  }
  means.forEach((m, c) => m.forEach((v, j) => (m[j] = v / Math.max(1, counts[c] ?? 0))));
  const cov = new Float64Array(dim * dim);
  const d = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const m = means[labels[i] ?? 0]!;
    for (let j = 0; j < dim; j++) d[j] = (features[i * dim + j] ?? 0) - (m[j] ?? 0);
    for (let a = 0; a < dim; a++) {
      const da = d[a] ?? 0;
      if (da === 0) continue;
      for (let b = 0; b < dim; b++) cov[a * dim + b] = (cov[a * dim + b] ?? 0) + da * (d[b] ?? 0);
    }
  }
  let trace = 0;
  for (let a = 0; a < dim; a++) trace += (cov[a * dim + a] ?? 0) / n;
  const ridge = 1e-3 * Math.max(trace / dim, 1e-6);
  const rows: number[][] = [];
  for (let a = 0; a < dim; a++) {
    const row: number[] = [];
    for (let b = 0; b < dim; b++) row.push((cov[a * dim + b] ?? 0) / n + (a === b ? ridge : 0));
    rows.push(row);
  }
  const inv = inverse(new Matrix(rows));
  return { means: means.map((m) => Array.from(m)), precision: inv.to1DArray() };
}

/**
 * Squared Mahalanobis distance of one feature vector to the nearest class mean:
 * `min_c (f - mu_c)^T Sigma^-1 (f - mu_c)` (Lee et al. 2018, eq. 2).
 */
export function mahalanobis(f: ArrayLike<number>, fit: GaussianFit): number {
  const dim = f.length;
  const d = new Float64Array(dim);
  let best = Infinity;
  for (const m of fit.means) {
    for (let j = 0; j < dim; j++) d[j] = (f[j] ?? 0) - (m[j] ?? 0);
    let s = 0;
    for (let a = 0; a < dim; a++) {
      let row = 0;
      for (let b = 0; b < dim; b++) row += (fit.precision[a * dim + b] ?? 0) * (d[b] ?? 0);
      s += (d[a] ?? 0) * row;
    }
    if (s < best) best = s;
  }
  return best;
}

/** Why an input was judged not confidently one of the classes. */
export type OodReason = 'low-probability' | 'far-from-training-data';

/**
 * Applies a model's stored criterion: confident only when the top softmax probability is at
 * least `minProbability` AND the features lie within `maxDistance` of a class (both calibrated on
 * held-out data by `src/trainer/calibrate-ood.ts`).
 */
export function judgeConfidence(
  criterion: OodCriterion,
  topProbability: number,
  features: ArrayLike<number>,
): { confident: boolean; distance: number; reasons: OodReason[] } {
  const distance = mahalanobis(features, criterion);
  const reasons: OodReason[] = [];
  if (topProbability < criterion.minProbability) reasons.push('low-probability');
  if (distance > criterion.maxDistance) reasons.push('far-from-training-data');
  return { confident: reasons.length === 0, distance, reasons };
}
