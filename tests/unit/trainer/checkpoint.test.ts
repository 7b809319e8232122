import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMobileNetLike } from '../../../src/ml/architectures/mobilenet-fashion.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { renderLearningCurves } from '../../../src/imaging/curves.ts';
import { loadCheckpoint, saveCheckpoint } from '../../../src/trainer/checkpoint.ts';
import {
  trainClassifier,
  type LabelledImages,
  type TrainCheckpoint,
  type TrainOptions,
} from '../../../src/trainer/train.ts';

/** Three classes of 12x12 images: a bright top, middle or bottom band, with noise. */
function bands(count: number): LabelledImages {
  const rng = seedrandom('bands');
  const images = new Uint8Array(count * 144);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let p = 0; p < 144; p++) {
      const row = Math.floor(p / 12);
      images[i * 144 + p] = Math.floor(rng() * 90) + (Math.floor(row / 4) === c ? 140 : 0);
    }
  }
  return { images, labels, count, height: 12, width: 12, channels: 1 };
}

const tiny = (seed: number) =>
  buildMobileNetLike({
    inputShape: [12, 12, 1],
    numClasses: 3,
    stemFilters: 4,
    blocks: [
      { filters: 8, strides: 2 },
      { filters: 8, strides: 1 },
    ],
    seed,
  });

let dir: string;
beforeAll(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('training checkpoints', () => {
  // 340 images: 272 train, 9 batches an epoch, so the resume at step 18 is one where float32
  // bias corrections built step by step differ from tfjs's pow(beta, step + 1).
  const data = bands(340);
  const base: TrainOptions = {
    epochs: 4,
    batchSize: 32,
    validationSplit: 0.2,
    seed: 3,
    learningRate: (e) => 1e-3 / (e + 1),
  };

  it.each([1, 2])(
    'a run killed after epoch 2 and resumed ends with the same weights and history as one uninterrupted run (%i worker(s))',
    async (workers) => {
      const whole = tiny(9);
      const wholeRes = await trainClassifier(whole, data, { ...base, workers });
      const wholeWeights = whole.getWeights().map((w) => Array.from(w.dataSync()));

      // The "killed" run: checkpoints after every epoch, stops after 2.
      const ckptDir = path.join(dir, `run-${workers}`);
      const first = tiny(9);
      await trainClassifier(first, data, {
        ...base,
        workers,
        epochs: 2,
        onCheckpoint: (c) => saveCheckpoint(ckptDir, 'fp', c),
      });
      first.dispose();
      expect(await loadCheckpoint(ckptDir, 'other settings')).toBeUndefined();
      const saved = await loadCheckpoint(ckptDir, 'fp');
      expect(saved?.epochsDone).toBe(2);
      expect(saved?.optimizer[0]?.values[0]).toBe(9 * 2); // Adam's step count: 272 / 32 = 9 batches per epoch

      const second = tiny(9);
      // Scrambled weights: the checkpoint must replace every one of them.
      const noise = second.getWeights().map((w) => tf.randomNormal(w.shape));
      second.setWeights(noise);
      tf.dispose(noise);
      const before = tf.memory().numTensors;
      const resumed = await trainClassifier(second, data, { ...base, workers, resume: saved! });
      expect(tf.memory().numTensors).toBe(before);
      const figures = (h: typeof resumed.history) =>
        h.map((r) => [r.epoch, r.loss, r.valAcc, r.lr]);
      expect(figures(resumed.history)).toEqual(figures(wholeRes.history));
      expect(second.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(wholeWeights);
      whole.dispose();
      second.dispose();
    },
  );

  it('early stopping ends the run after `patience` epochs without a better validation accuracy and keeps the best epoch', async () => {
    const model = tiny(4);
    const snapshots: number[][] = [];
    // A learning rate so high from epoch 2 on that validation accuracy cannot improve on epoch 1's.
    const res = await trainClassifier(model, data, {
      ...base,
      epochs: 8,
      learningRate: (e) => (e === 0 ? 1e-2 : 0),
      earlyStopping: { patience: 2 },
      onEpochEnd: (_r, m) => {
        snapshots.push(Array.from(m.getWeights()[0]!.dataSync()));
      },
    });
    expect(res.stopped).toBe('early-stopping');
    expect(res.history).toHaveLength(3);
    expect(res.keptEpoch).toBe(1);
    expect(Array.from(model.getWeights()[0]!.dataSync())).toEqual(snapshots[0]);
    model.dispose();
  });

  it('keeps the previous checkpoint whole and refuses a damaged one', async () => {
    const ckptDir = path.join(dir, 'damaged');
    const c: TrainCheckpoint = {
      epochsDone: 1,
      history: [],
      rngState: { i: 1, j: 2, S: [1, 2, 3] },
      weights: [{ name: 'w', shape: [2, 2], values: new Float32Array([1, 2, 3, 4]) }],
      optimizer: [],
    };
    await saveCheckpoint(ckptDir, 'fp', c);
    await saveCheckpoint(ckptDir, 'fp', { ...c, epochsDone: 2 });
    expect((await readdir(dir)).filter((n) => n.startsWith('.damaged'))).toEqual([]);
    const back = await loadCheckpoint(ckptDir, 'fp');
    expect(back?.epochsDone).toBe(2);
    expect(Array.from(back!.weights[0]!.values)).toEqual([1, 2, 3, 4]);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(ckptDir, 'tensors.bin'), new Uint8Array(8));
    await expect(loadCheckpoint(ckptDir, 'fp')).rejects.toThrow(/damaged checkpoint.*too short/);
  });
});

describe('renderLearningCurves', () => {
  it('draws two runs as a PNG', async () => {
    const h = (k: number) =>
      [1, 2, 3].map((epoch) => ({
        epoch,
        loss: k / epoch,
        acc: 1 - k / (epoch + 2),
        valLoss: k / epoch + 0.1,
        valAcc: 0.9 - k / (epoch + 3),
      }));
    const png = await renderLearningCurves([
      { label: 'resnet', history: h(1) },
      { label: 'plain', history: h(2) },
    ]);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(800);
  });
});
