import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLeNet } from '../../../src/ml/architectures/lenet.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { calibrateOod, FALSE_ALARM_BUDGET } from '../../../src/trainer/calibrate-ood.ts';
import { SYSTEM_DATASET_DIRS } from '../../../src/trainer/datasets/locations.ts';
import type { LabelledImages } from '../../../src/trainer/train.ts';

/** 28x28 light strokes on black, MNIST's polarity: a vertical bar ("1") or a ring ("0"). */
function strokes(count: number): LabelledImages {
  const rng = seedrandom('strokes');
  const images = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % 2;
    labels[i] = c;
    const cx = 12 + Math.floor(rng() * 4);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const ring = Math.abs(Math.hypot(x - cx, y - 14) - 7) < 1.6;
        const bar = Math.abs(x - cx) < 1.6 && y > 5 && y < 23;
        if (c === 0 ? ring : bar) images[i * 784 + y * 28 + x] = 255;
      }
    }
  }
  return { images, labels, count, height: 28, width: 28, channels: 1 };
}

const FASHION_INSTALLED = SYSTEM_DATASET_DIRS['fashion-mnist'].some((d) =>
  existsSync(path.join(d, 't10k-images-idx3-ubyte.gz')),
);

let emptyDataDir: string;
beforeAll(async () => {
  await initBackend();
  emptyDataDir = await mkdtemp(path.join(tmpdir(), 'no-data-'));
});
afterAll(async () => {
  await rm(emptyDataDir, { recursive: true, force: true });
});

describe('calibrateOod', () => {
  it('sets the threshold at the false-alarm quantile of validation digits, marks missing held-out sets n/a, and leaks no tensors', async () => {
    const data = strokes(60);
    const model = buildLeNet({ seed: 4 });
    const validation = Uint32Array.from({ length: 50 }, (_, i) => i + 10);
    const before = tf.memory().numTensors;
    const criterion = await calibrateOod(model, data, validation, emptyDataDir);
    expect(tf.memory().numTensors).toBe(before);
    expect(criterion.method).toBe('max-softmax');
    // An untrained 10-class softmax: top-1 probabilities lie between 1/10 and 1.
    expect(criterion.minProbability).toBeGreaterThan(0.1);
    expect(criterion.minProbability).toBeLessThan(1);
    const c = criterion.calibration;
    expect(c['falseAlarmBudget']).toBe(FALSE_ALARM_BUDGET);
    expect(c['validationSamples']).toBe(50);
    // The 2% quantile of 50 values is the second smallest: at most one value lies under it
    // (ties with it are not flagged), plus any image the pipeline refused (none of these strokes).
    expect(c['validationFalseAlarm']).toBeLessThanOrEqual(1 / 50);
    expect(c['mnistTestFalseAlarm']).toBe('n/a');
    // Debian's dataset-fashion-mnist package, where installed, is found in its system folder.
    if (FASHION_INSTALLED) {
      expect(c['fashionMnistMissRateSamples']).toBeGreaterThan(0);
      const miss = c['fashionMnistMissRate'] as number;
      expect(miss).toBeGreaterThanOrEqual(0);
      expect(miss).toBeLessThanOrEqual(1);
    } else {
      expect(c['fashionMnistMissRate']).toBe('n/a');
    }
    expect(c['cifar10MissRate']).toBe('n/a');
    expect(c['renderedWordsMissRateSamples']).toBe(300);
    const words = c['renderedWordsMissRate'] as number;
    expect(words).toBeGreaterThanOrEqual(0);
    expect(words).toBeLessThanOrEqual(1);
    model.dispose();
  }, 120_000);
});
