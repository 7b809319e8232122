import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { fitGaussian, judgeConfidence, mahalanobis } from '../../../src/ml/ood.ts';

/** Two Gaussian classes in 2-D with known means and a diagonal covariance diag(4, 1). */
function sample(n: number): { f: Float32Array; labels: number[] } {
  const rng = seedrandom('g');
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const f = new Float32Array(n * 2);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    labels.push(c);
    f[i * 2] = (c === 0 ? -5 : 5) + 2 * normal();
    f[i * 2 + 1] = normal();
  }
  return { f, labels };
}

describe('fitGaussian and mahalanobis', () => {
  const { f, labels } = sample(20_000);
  const fit = fitGaussian(f, labels, 2, 2);

  it('recovers the class means and the inverse shared covariance', () => {
    expect(fit.means[0]![0]).toBeCloseTo(-5, 1);
    expect(fit.means[1]![0]).toBeCloseTo(5, 1);
    expect(fit.precision[0]).toBeCloseTo(0.25, 1);
    expect(fit.precision[3]).toBeCloseTo(1, 1);
    expect(Math.abs(fit.precision[1]!)).toBeLessThan(0.03);
  });

  it('measures the squared distance to the nearest mean in covariance units', () => {
    // (4 / 2)^2 = 4 along x from (5, 0); 3^2 = 9 along y.
    expect(mahalanobis([9, 0], fit)).toBeCloseTo(4, 0);
    expect(mahalanobis([-5, 3], fit)).toBeCloseTo(9, 0);
  });

  it('judges by both the probability and the distance', () => {
    const criterion = {
      method: 'softmax+mahalanobis' as const,
      featureLayer: 'x',
      minProbability: 0.9,
      maxDistance: 10,
      means: fit.means,
      precision: fit.precision,
      calibration: {},
    };
    expect(judgeConfidence(criterion, 0.95, [5, 0])).toMatchObject({
      confident: true,
      reasons: [],
    });
    expect(judgeConfidence(criterion, 0.5, [5, 0]).reasons).toEqual(['low-probability']);
    expect(judgeConfidence(criterion, 0.99, [0, 10]).reasons).toEqual(['far-from-training-data']);
  });
});
