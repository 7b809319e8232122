import { describe, expect, it } from 'vitest';
import { judgeConfidence } from '../../../src/ml/ood.ts';

describe('judgeConfidence', () => {
  const criterion = { method: 'max-softmax' as const, minProbability: 0.62, calibration: {} };

  it('is confident from the calibrated threshold up', () => {
    expect(judgeConfidence(criterion, 0.62)).toEqual({ confident: true, reasons: [] });
    expect(judgeConfidence(criterion, 0.99)).toEqual({ confident: true, reasons: [] });
  });

  it('flags a top-1 probability under the threshold', () => {
    expect(judgeConfidence(criterion, 0.61)).toEqual({
      confident: false,
      reasons: ['low-probability'],
    });
  });
});
