import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildLeNet } from '../../../../src/ml/architectures/lenet.ts';

describe('buildLeNet', () => {
  it('has the lab example layers and 44,426 parameters', () => {
    const model = buildLeNet();
    expect(model.countParams()).toBe(44_426);
    expect(model.layers.map((l) => l.getClassName())).toEqual([
      'InputLayer',
      'Conv2D',
      'MaxPooling2D',
      'Conv2D',
      'MaxPooling2D',
      'Flatten',
      'Dense',
      'Dense',
      'Dense',
    ]);
    expect(model.layers.map((l) => (l.outputShape as number[]).slice(1))).toEqual([
      [28, 28, 1],
      [24, 24, 6],
      [12, 12, 6],
      [8, 8, 16],
      [4, 4, 16],
      [256],
      [120],
      [84],
      [10],
    ]);
    model.dispose();
  });

  it('maps a batch [2, 28, 28, 1] to probabilities [2, 10] that sum to 1, without leaking tensors', () => {
    const model = buildLeNet({ seed: 1 });
    const before = tf.memory().numTensors;
    const sums = tf.tidy(() => {
      const y = model.predict(tf.ones([2, 28, 28, 1])) as tf.Tensor2D;
      expect(y.shape).toEqual([2, 10]);
      return y.sum(-1).arraySync() as number[];
    });
    expect(tf.memory().numTensors).toBe(before);
    for (const s of sums) expect(s).toBeCloseTo(1, 5);
    model.dispose();
  });

  it('is reproducible for a seed', () => {
    const a = buildLeNet({ seed: 7 });
    const b = buildLeNet({ seed: 7 });
    const wa = a.getWeights()[0]!.dataSync();
    const wb = b.getWeights()[0]!.dataSync();
    expect(Array.from(wa)).toEqual(Array.from(wb));
    a.dispose();
    b.dispose();
  });

  it('rejects an input too small for its convolutions', () => {
    expect(() => buildLeNet({ inputShape: [8, 8, 1] })).toThrow(/at least 16x16/);
  });
});
