import type { OodCriterion } from './model-meta.ts';

/** Why an input was judged not confidently one of the classes. */
export type OodReason = 'low-probability';

/**
 * Applies a model's stored criterion (maximum softmax probability, Hendrycks & Gimpel 2017,
 * "A Baseline for Detecting Misclassified and Out-of-Distribution Examples"): the answer is
 * confident only when the top-1 probability reaches `minProbability`, a threshold calibrated on
 * held-out data by `src/trainer/calibrate-ood.ts`. The digit model is trained with Outlier
 * Exposure, which is what makes this simple test separate non-digits well.
 */
export function judgeConfidence(
  criterion: OodCriterion,
  topProbability: number,
): { confident: boolean; reasons: OodReason[] } {
  const confident = topProbability >= criterion.minProbability;
  return { confident, reasons: confident ? [] : ['low-probability'] };
}
