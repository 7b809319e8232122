/**
 * issue 16: a run without a validation split (the class fine-tune) has NaN validation figures,
 * which JSON writes as null: its checkpoint must still load, with NaN back, so the job resumes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../../../src/trainer/checkpoint.ts';
import type { TrainCheckpoint } from '../../../src/trainer/train.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ck-noval-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a checkpoint of a run without validation', () => {
  it('loads with NaN validation loss and accuracy', async () => {
    const record = {
      epoch: 1,
      loss: 0.5,
      acc: 0.8,
      valLoss: NaN,
      valAcc: NaN,
      lr: 3e-4,
      seconds: 2,
      samplesPerSec: 100,
    };
    const ck: TrainCheckpoint = {
      epochsDone: 1,
      history: [record],
      rngState: { i: 1, j: 2, S: [0, 1] },
      weights: [{ name: 'w', shape: [2], values: Float32Array.of(1, 2) }],
      optimizer: [{ name: 'step', shape: [], values: Float32Array.of(3) }],
    };
    await saveCheckpoint(path.join(dir, 'ck'), 'fp', ck);
    const back = await loadCheckpoint(path.join(dir, 'ck'), 'fp');
    expect(back?.epochsDone).toBe(1);
    expect(back?.history[0]).toEqual(record); // toEqual treats NaN as equal to NaN
    expect(Number.isNaN(back?.history[0]?.valAcc)).toBe(true);
    expect(Array.from(back!.weights[0]!.values)).toEqual([1, 2]);
  });
});
