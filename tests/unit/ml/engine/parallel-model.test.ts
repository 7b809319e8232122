import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerConvGradientKernels } from '../../../../src/ml/kernels/conv-grads.ts';
import {
  createParallelModel,
  type Batch,
  type ParallelModel,
} from '../../../../src/ml/engine/parallel-model.ts';

const OPTIONS = {
  loss: 'categoricalCrossentropy',
  optimizer: { name: 'adam', learningRate: 0.01 },
} as const;

/** Deterministic uniform values in [0, 1) (mulberry32). */
function randomValues(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  return out;
}

/** A tiny conv net: Conv 4@3x3 relu > MaxPool 2 > Flatten > Dense 10 softmax on 8x8x1. */
function buildTinyNet(withBatchNorm = false): tf.LayersModel {
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({
      inputShape: [8, 8, 1],
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  ];
  if (withBatchNorm) layers.push(tf.layers.batchNormalization());
  layers.push(
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({
      units: 10,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
  );
  return tf.sequential({ layers });
}

function batch(n: number, seed: number): { x: Batch; y: Batch } {
  const labels = randomValues(n, seed + 1);
  const y = new Float32Array(n * 10);
  labels.forEach((v, i) => (y[i * 10 + Math.floor(v * 10)] = 1));
  return {
    x: { values: randomValues(n * 64, seed), shape: [n, 8, 8, 1] },
    y: { values: y, shape: [n, 10] },
  };
}

async function trainCurve(parallel: ParallelModel, steps: number): Promise<number[]> {
  // One batch over and over: the loss must fall as the net memorizes it.
  const { x, y } = batch(32, 100);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push(await parallel.trainBatch(x, y));
  }
  return losses;
}

let one: ParallelModel;
let two: ParallelModel;

beforeAll(async () => {
  registerConvGradientKernels();
  await tf.setBackend('wasm');
  const model = buildTinyNet();
  [one, two] = await Promise.all([
    createParallelModel(model, { workers: 1 }),
    createParallelModel(model, { workers: 2 }),
  ]);
  model.dispose();
});

afterAll(async () => {
  await Promise.all([one.dispose(), two.dispose()]);
});

describe('ParallelModel', () => {
  it('predicts what the model predicts in this thread, in input order', async () => {
    const model = buildTinyNet();
    const { x } = batch(37, 7); // uneven split: 19 + 18 rows
    const expected = tf.tidy(() =>
      (model.predict(tf.tensor(x.values, [...x.shape])) as tf.Tensor).dataSync(),
    );
    model.dispose();

    const actual = await two.predict(x, 8);

    expect(actual.shape).toEqual([37, 10]);
    actual.values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
  });

  it('trains with two workers along the one-worker loss curve, replicas bit-identical', async () => {
    await Promise.all([one.compile(OPTIONS), two.compile(OPTIONS)]);

    const [curveOne, curveTwo] = await Promise.all([trainCurve(one, 6), trainCurve(two, 6)]);

    curveTwo.forEach((loss, i) =>
      expect(Math.abs(loss - curveOne[i]!) / curveOne[i]!).toBeLessThan(1e-4),
    );
    expect(curveOne.at(-1)!).toBeLessThan(curveOne[0]!);
    const [w0, w1] = await Promise.all([two.getWeights(0), two.getWeights(1)]);
    w0.forEach((w, i) =>
      expect(Buffer.from(w.buffer).equals(Buffer.from(w1[i]!.buffer))).toBe(true),
    );
  });

  it('keeps the workers’ tensor counts flat over training', async () => {
    await two.compile(OPTIONS);
    await trainCurve(two, 1); // optimizer slots are created on the first step
    const before = await two.numTensors();
    await trainCurve(two, 3);
    expect(await two.numTensors()).toEqual(before);
  });

  it('keeps batch-norm replicas identical in their trainable weights', async () => {
    const model = buildTinyNet(true);
    const parallel = await createParallelModel(model, { workers: 2 });
    model.dispose();
    try {
      await parallel.compile({
        loss: 'categoricalCrossentropy',
        optimizer: { name: 'sgd', learningRate: 0.1 },
      });
      await trainCurve(parallel, 2);
      const [w0, w1] = await Promise.all([parallel.getWeights(0), parallel.getWeights(1)]);
      // conv kernel, conv bias, gamma, beta are trainable; moving mean/variance are per replica
      for (const i of [0, 1, 2, 3]) {
        expect(Buffer.from(w0[i]!.buffer).equals(Buffer.from(w1[i]!.buffer))).toBe(true);
      }
    } finally {
      await parallel.dispose();
    }
  });

  it('computes the same loss from class indices (sparse) as from one-hot targets', async () => {
    const model = buildTinyNet();
    // Fresh replicas of the same weights (compile() resets only the optimizer).
    const [sparse, oneHot] = await Promise.all([
      createParallelModel(model, { workers: 1 }),
      createParallelModel(model, { workers: 1 }),
    ]);
    model.dispose();
    try {
      await Promise.all([
        sparse.compile({ ...OPTIONS, loss: 'sparseCategoricalCrossentropy' }),
        oneHot.compile(OPTIONS),
      ]);
      const { x, y } = batch(16, 3);
      const labels = new Float32Array(16).map((_, i) =>
        y.values.subarray(i * 10, i * 10 + 10).indexOf(1),
      );

      const [sparseLoss, oneHotLoss] = await Promise.all([
        sparse.trainBatch(x, { values: labels, shape: [16, 1] }),
        oneHot.trainBatch(x, y),
      ]);

      expect(sparseLoss).toBeCloseTo(oneHotLoss, 5);
    } finally {
      await Promise.all([sparse.dispose(), oneHot.dispose()]);
    }
  });

  it('rejects a batch with fewer rows than workers', async () => {
    await two.compile(OPTIONS);
    const { x, y } = batch(1, 1);
    await expect(two.trainBatch(x, y)).rejects.toThrow(/at least 2 rows/);
  });
});

describe('ParallelModel dropout', () => {
  it('draws a fresh mask in every worker at every step, also from a stock seeded Keras Dropout', async () => {
    // Ones > Dropout 0.5 > Dense(2, zeros): a kernel row moves only in steps where its unit was
    // kept in some worker's shard. With one row per worker, tfjs's seeded Dropout (one fixed mask
    // per batch row, the same in both workers) would move about 32 of 64 rows; fresh masks over
    // 6 steps x 2 workers move nearly all.
    const input = tf.input({ shape: [64] });
    const dropped = tf.layers.dropout({ rate: 0.5, seed: 7 }).apply(input);
    const out = tf.layers
      .dense({ units: 2, activation: 'softmax', useBias: false, kernelInitializer: 'zeros' })
      .apply(dropped) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const parallel = await createParallelModel(model, { workers: 2 });
    try {
      await parallel.compile({ ...OPTIONS, optimizer: { name: 'sgd', learningRate: 0.1 } });
      const y = new Float32Array([1, 0, 1, 0]);
      for (let s = 0; s < 6; s++) {
        await parallel.trainBatch(
          { values: new Float32Array(2 * 64).fill(1), shape: [2, 64] },
          { values: y, shape: [2, 2] },
        );
      }
      const [kernel] = await parallel.getWeights();
      let moved = 0;
      for (let r = 0; r < 64; r++) if (kernel![r * 2] !== 0) moved++;
      expect(moved).toBeGreaterThan(58);
    } finally {
      await parallel.dispose();
      model.dispose();
    }
  }, 60_000);
});
