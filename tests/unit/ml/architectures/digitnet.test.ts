import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildDigitNet } from '../../../../src/ml/architectures/digitnet.ts';

describe('buildDigitNet', () => {
  it("has Caffe's MNIST LeNet layers and 431,080 parameters", () => {
    const model = buildDigitNet();
    expect(model.countParams()).toBe(431_080);
    expect(model.layers.map((l) => l.getClassName())).toEqual([
      'InputLayer',
      'Conv2D',
      'MaxPooling2D',
      'Conv2D',
      'MaxPooling2D',
      'Flatten',
      'Dense',
      'Dense',
    ]);
    expect(model.layers.map((l) => (l.outputShape as number[]).slice(1))).toEqual([
      [28, 28, 1],
      [24, 24, 20],
      [12, 12, 20],
      [8, 8, 50],
      [4, 4, 50],
      [800],
      [500],
      [10],
    ]);
    model.dispose();
  });

  it('maps a batch [3, 28, 28, 1] to probabilities [3, 10] that sum to 1, without leaking tensors', () => {
    const model = buildDigitNet({ seed: 1 });
    const before = tf.memory().numTensors;
    const sums = tf.tidy(() => {
      const y = model.predict(tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 5)) as tf.Tensor2D;
      expect(y.shape).toEqual([3, 10]);
      return y.sum(-1).arraySync() as number[];
    });
    expect(tf.memory().numTensors).toBe(before);
    for (const s of sums) expect(s).toBeCloseTo(1, 5);
    model.dispose();
  });

  it('is reproducible for a seed, and another seed draws other weights', () => {
    const [a, b, c] = [7, 7, 8].map((seed) => buildDigitNet({ seed }));
    const first = (m: tf.LayersModel) => Array.from(m.getWeights()[2]!.dataSync().slice(0, 50));
    expect(first(a!)).toEqual(first(b!));
    expect(first(a!)).not.toEqual(first(c!));
    for (const m of [a, b, c]) m!.dispose();
  });

  it('rejects an input too small for its convolutions', () => {
    expect(() => buildDigitNet({ inputShape: [8, 8, 1] })).toThrow(/at least 16x16/);
  });
});
