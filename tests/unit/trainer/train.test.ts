import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/ml/backend.ts';
import { buildLeNet } from '../../../src/ml/architectures/lenet.ts';
import {
  evaluateClassifier,
  shuffledIndices,
  trainClassifier,
  type LabelledImages,
} from '../../../src/trainer/train.ts';
import seedrandom from 'seedrandom';

/** Two easy classes of 28x28 images: a horizontal bar (0) or a vertical bar (1), at random places. */
function bars(count: number): LabelledImages {
  const rng = seedrandom('bars');
  const images = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % 2;
    labels[i] = c;
    const p = 6 + Math.floor(rng() * 16);
    for (let k = 4; k < 24; k++) {
      const [y, x] = c === 0 ? [p, k] : [k, p];
      images[i * 784 + y * 28 + x] = 255;
      images[i * 784 + (y + (c === 0 ? 1 : 0)) * 28 + x + (c === 1 ? 1 : 0)] = 255;
    }
  }
  return { images, labels, count, height: 28, width: 28, channels: 1 };
}

beforeAll(async () => {
  await initBackend();
});

describe('trainClassifier', () => {
  it('learns two classes on the wasm backend, records history, and leaks no tensors', async () => {
    const data = bars(512);
    const model = buildLeNet({ numClasses: 2, seed: 5 });
    const before = tf.memory().numTensors;
    const events: string[] = [];
    const res = await trainClassifier(model, data, {
      epochs: 3,
      batchSize: 32,
      validationSplit: 0.25,
      seed: 1,
      learningRate: () => 2e-3,
      onProgress: (p) => events.push(p.kind),
    });
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.memory().numTensors).toBe(before);
    expect(res.history).toHaveLength(3);
    expect(res.validationIndices).toHaveLength(128);
    expect(res.history[2]!.valAcc).toBeGreaterThan(0.95);
    expect(res.history[2]!.loss).toBeLessThan(res.history[0]!.loss);
    expect(events.filter((e) => e === 'batch')).toHaveLength(3 * 12);
    model.dispose();
  });

  it('gives the same first-epoch loss for the same seed', async () => {
    const data = bars(128);
    const run = async (): Promise<number> => {
      const model = buildLeNet({ numClasses: 2, seed: 9 });
      const r = await trainClassifier(model, data, {
        epochs: 1,
        batchSize: 32,
        validationSplit: 0,
        seed: 4,
        learningRate: () => 1e-3,
      });
      model.dispose();
      return r.history[0]!.loss;
    };
    expect(await run()).toBeCloseTo(await run(), 5);
  });
});

describe('trainClassifier on worker threads', () => {
  it('with 2 workers follows the 1-worker run (averaged gradients) and leaks no tensors', async () => {
    const data = bars(256);
    const run = async (workers: number) => {
      const model = buildLeNet({ numClasses: 2, seed: 3 });
      const before = tf.memory().numTensors;
      const r = await trainClassifier(model, data, {
        epochs: 2,
        batchSize: 32,
        validationSplit: 0.25,
        seed: 2,
        learningRate: () => 1e-3,
        workers,
      });
      expect(tf.memory().numTensors).toBe(before);
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return { history: r.history, weights };
    };
    const one = await run(1);
    const two = await run(2);
    expect(two.history).toHaveLength(2);
    for (const [i, rec] of two.history.entries()) {
      const ref = one.history[i]!;
      expect(rec.loss).toBeCloseTo(ref.loss, 3);
      expect(rec.acc).toBeCloseTo(ref.acc, 2);
      expect(rec.valLoss).toBeCloseTo(ref.valLoss, 3);
    }
    expect(two.history[1]!.valAcc).toBeGreaterThan(0.9);
    // The model in this thread holds what the workers trained (not its initial weights).
    const drift = Math.max(
      ...two.weights.flatMap((w, i) => w.map((v, k) => Math.abs(v - one.weights[i]![k]!))),
    );
    expect(drift).toBeLessThan(1e-3);
  });

  it('refuses a worker count that is not a positive integer', async () => {
    const model = buildLeNet({ numClasses: 2, seed: 3 });
    const opts = { epochs: 1, batchSize: 8, validationSplit: 0, seed: 1, learningRate: () => 1e-3 };
    await expect(trainClassifier(model, bars(16), { ...opts, workers: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(trainClassifier(model, bars(16), { ...opts, workers: 1.5 })).rejects.toThrow(
      /positive integer/,
    );
    model.dispose();
  });
});

describe('evaluateClassifier and shuffledIndices', () => {
  it('counts accuracy exactly', async () => {
    const data = bars(64);
    // A model that always answers class 0: half of `bars` is right.
    const input = tf.input({ shape: [28, 28, 1] });
    const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    const out = tf.layers
      .dense({
        units: 2,
        activation: 'softmax',
        kernelInitializer: 'zeros',
        biasInitializer: tf.initializers.constant({ value: 0 }),
      })
      .apply(flat) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    model.layers[2]!.setWeights([tf.zeros([784, 2]), tf.tensor1d([1, 0])]);
    const r = await evaluateClassifier(model, data);
    expect(r.acc).toBe(0.5);
    model.dispose();
  });

  it('shuffles to a permutation', () => {
    const p = shuffledIndices(100, seedrandom('x'));
    expect([...p].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    expect([...p]).not.toEqual([...Array(100).keys()]);
  });
});
