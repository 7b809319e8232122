import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/ml/backend.ts';
import { saveModel } from '../../../src/ml/model-io.ts';
import { readModelMeta } from '../../../src/ml/model-meta.ts';
import { readCheckpointFingerprint } from '../../../src/trainer/checkpoint.ts';
import { readInitialWeights } from '../../../src/trainer/init-weights.ts';
import {
  runTrainingJob,
  trainingJobSpecSchema,
  type TrainBeginInfo,
  type TrainingCallbacks,
  type TrainingJobSpecInput,
} from '../../../src/trainer/run-training-job.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';

let root: string;
let dataDir: string;

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(path.join(tmpdir(), 'run-training-job-'));
  dataDir = path.join(root, 'data');
  // 240 images: 180 to train on (6 batches of 30), 60 for validation.
  await writeBandedIdx(dataDir, 'mnist', { train: 240, test: 60 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A LeNet job on the fixture: no augmentation, outliers or calibration (the fixture has none). */
function lenetSpec(name: string, epochs: number): TrainingJobSpecInput {
  return {
    model: 'lenet-mnist',
    dataDir,
    epochs,
    batchSize: 30,
    learningRate: 3e-3,
    validationSplit: 0.25,
    seed: 7,
    workers: 1,
    augment: false,
    outliers: false,
    calibrate: false,
    outputDir: path.join(root, name, 'model'),
    checkpointDir: path.join(root, name, 'checkpoint'),
  };
}

/** Records every callback as one line, in order. */
function recorder(onBatch?: (epoch: number, batch: number) => void): {
  events: string[];
  callbacks: TrainingCallbacks;
} {
  const events: string[] = [];
  return {
    events,
    callbacks: {
      onTrainBegin: (i) =>
        events.push(
          `begin ${i.model} ${i.trainSamples} workers=${i.workers}${i.resumed ? ` resumed=${i.resumed.epochsDone}` : ''}`,
        ),
      onEpochBegin: (i) => events.push(`epoch-begin ${i.epoch} of ${i.epochs}, ${i.batches}`),
      onBatchEnd: (i) => {
        events.push(`batch ${i.epoch}.${i.batch}/${i.batches}`);
        onBatch?.(i.epoch, i.batch);
      },
      onEpochEnd: (r) => events.push(`epoch-end ${r.epoch}`),
      onCheckpoint: (i) => events.push(`checkpoint ${i.epochsDone}/${i.epochs}`),
    },
  };
}

const batchEvents = (epoch: number, upTo: number): string[] =>
  Array.from({ length: upTo }, (_, b) => `batch ${epoch}.${b + 1}/6`);

describe('runTrainingJob', () => {
  it('trains LeNet for one epoch on a small fixture, reports progress as callbacks and saves the model', async () => {
    const before = tf.memory().numTensors;
    const { events, callbacks } = recorder();
    const spec = lenetSpec('one-epoch', 1);

    const result = await runTrainingJob(spec, { onProgress: callbacks });

    expect(events).toEqual([
      'begin lenet-mnist 240 workers=1',
      'epoch-begin 0 of 1, 6',
      ...batchEvents(0, 6),
      'epoch-end 1',
      'checkpoint 1/1',
    ]);
    expect(result.saved).toBe(true);
    expect(result.modelDir).toBe(spec.outputDir);
    expect(result.metrics.history).toHaveLength(1);
    expect(result.metrics.testSamples).toBe(60);
    expect(result.metrics.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.metrics.testAccuracy).toBeLessThanOrEqual(1);
    expect((await readdir(result.modelDir)).sort()).toEqual(
      ['group1-shard1of1.bin', 'history.json', 'history.png', 'meta.json', 'model.json'].sort(),
    );
    const meta = await readModelMeta(result.modelDir);
    expect(meta.testAccuracy).toBe(result.metrics.testAccuracy);
    expect(meta.training?.command).toBe(
      'bin/cnn-classroom train lenet-mnist --epochs 1 --batch 30 --lr 0.003 --schedule cosine --patience 0 --seed 7 --validation-split 0.25 --workers 1 --no-augment --no-outliers',
    );
    // The checkpoint's fingerprint is the settings as JSON, not a command line.
    const fingerprint = await readCheckpointFingerprint(spec.checkpointDir!);
    expect(JSON.parse(fingerprint!)).toMatchObject({
      model: 'lenet-mnist',
      batchSize: 30,
      workers: 1,
    });
    expect((await stat(`${spec.checkpointDir!}-history.png`)).isFile()).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops within one batch of an abort, and the same spec resumes to the weights of an uninterrupted run', async () => {
    const whole = await runTrainingJob(lenetSpec('whole', 2));

    const spec = lenetSpec('interrupted', 2);
    const controller = new AbortController();
    const first = recorder((epoch, batch) => {
      if (epoch === 1 && batch === 3) controller.abort();
    });
    await expect(
      runTrainingJob(spec, { signal: controller.signal, onProgress: first.callbacks }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // Nothing after the batch during which the signal was aborted.
    expect(first.events.slice(-5)).toEqual([
      'checkpoint 1/2',
      'epoch-begin 1 of 2, 6',
      ...batchEvents(1, 3),
    ]);
    await expect(readdir(spec.outputDir)).rejects.toMatchObject({ code: 'ENOENT' });

    const second = recorder();
    const resumed = await runTrainingJob(spec, { onProgress: second.callbacks });

    expect(second.events).toEqual([
      'begin lenet-mnist 240 workers=1 resumed=1',
      'epoch-begin 1 of 2, 6',
      ...batchEvents(1, 6),
      'epoch-end 2',
      'checkpoint 2/2',
    ]);
    expect(resumed.metrics.history.map((r) => r.epoch)).toEqual([1, 2]);
    expect(resumed.metrics.history.map((r) => r.loss)).toEqual(
      whole.metrics.history.map((r) => r.loss),
    );
    const weights = await readFile(path.join(resumed.modelDir, 'group1-shard1of1.bin'));
    const reference = await readFile(path.join(whole.modelDir, 'group1-shard1of1.bin'));
    expect(weights.length).toBe(4 * 44_426); // this LeNet's parameters, float32
    expect(weights.equals(reference)).toBe(true);
    expect(resumed.metrics.testAccuracy).toBe(whole.metrics.testAccuracy);
  });

  it('stops within a batch of an abort that arrives as an event (Ctrl-C, a timer) on one thread, not at the end of the epoch', async () => {
    const spec = lenetSpec('abort-event', 2);
    const controller = new AbortController();
    // As SIGINT reaches the CLI: an event of the loop, not a call from inside the training loop.
    const run = recorder((epoch, batch) => {
      if (epoch === 0 && batch === 1) setImmediate(() => controller.abort());
    });
    await expect(
      runTrainingJob(spec, { signal: controller.signal, onProgress: run.callbacks }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // Seen right after the batch during which it arrived (it was the first: 5 of 6 left undone).
    expect(run.events.slice(1)).toEqual(['epoch-begin 0 of 2, 6', ...batchEvents(0, 1)]);
  });

  it("starts from a saved model's weights (initFrom): too small a learning rate to move them keeps the saved model's weights and test accuracy", async () => {
    const source = await runTrainingJob(lenetSpec('init-source', 1));
    const sourceWeights = new Float32Array(
      (await readFile(path.join(source.modelDir, 'group1-shard1of1.bin'))).buffer.slice(0),
    );
    const before = tf.memory().numTensors;
    const tiny = { learningRate: 1e-12, seed: 11 };
    const { events, callbacks } = recorder();

    const warm = await runTrainingJob(
      { ...lenetSpec('init-warm', 1), ...tiny, initFrom: source.modelDir },
      { onProgress: callbacks },
    );
    const fresh = await runTrainingJob({ ...lenetSpec('init-fresh', 1), ...tiny });

    expect(tf.memory().numTensors).toBe(before);
    expect(events[0]).toBe('begin lenet-mnist 240 workers=1');
    const shard = async (r: typeof warm): Promise<Float32Array> =>
      new Float32Array(
        (await readFile(path.join(r.modelDir, 'group1-shard1of1.bin'))).buffer.slice(0),
      );
    const maxDiff = (a: Float32Array, b: Float32Array): number =>
      a.reduce((m, x, i) => Math.max(m, Math.abs(x - (b[i] ?? NaN))), 0);
    expect(sourceWeights.length).toBe(44_426);
    expect(maxDiff(await shard(warm), sourceWeights)).toBeLessThan(1e-6);
    // Without initFrom the same settings start from the seed's fresh weights: far from them.
    expect(maxDiff(await shard(fresh), sourceWeights)).toBeGreaterThan(0.01);
    expect(warm.metrics.testAccuracy).toBe(source.metrics.testAccuracy);

    // The starting weights are part of the settings (a checkpoint of a fresh run is not resumed)
    // and of the record.
    const digest = (await readInitialWeights(source.modelDir)).record.sha256;
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(warm.settings.initFrom).toBe(digest);
    expect(
      JSON.parse((await readCheckpointFingerprint(lenetSpec('init-warm', 1).checkpointDir!))!),
    ).toMatchObject({ initFrom: digest });
    expect(fresh.settings.initFrom).toBeUndefined();
    const meta = await readModelMeta(warm.modelDir);
    expect(meta.training?.initFrom).toEqual({
      sha256: digest,
      testAccuracy: source.metrics.testAccuracy,
      epochs: 1,
      seconds: source.meta.training?.seconds,
      command: source.command,
    });
    expect(meta.training?.command).toBe(
      `bin/cnn-classroom train lenet-mnist --epochs 1 --batch 30 --lr 1e-12 --schedule cosine --patience 0 --seed 11 --validation-split 0.25 --workers 1 --no-augment --no-outliers --init-from <sha256 ${digest.slice(0, 12)}>`,
    );

    // Other starting weights with the same checkpoint folder: that run's checkpoint is not
    // resumed, and the reason names both starting points (stopped as soon as it is reported).
    const freshDigest = (await readInitialWeights(fresh.modelDir)).record.sha256;
    const stop = new AbortController();
    let notResumed: TrainBeginInfo['notResumed'];
    await expect(
      runTrainingJob(
        { ...lenetSpec('init-warm', 1), ...tiny, initFrom: fresh.modelDir },
        {
          signal: stop.signal,
          onProgress: {
            onTrainBegin: (i) => {
              notResumed = i.notResumed;
              stop.abort();
            },
          },
        },
      ),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(notResumed).toEqual({
      dir: lenetSpec('init-warm', 1).checkpointDir,
      reason: 'other-settings',
      detail: `${warm.command}; it started from the weights <sha256 ${digest.slice(0, 12)}>, this run from the weights <sha256 ${freshDigest.slice(0, 12)}>`,
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses to start from a saved model of another architecture, before loading any data, naming the weight that differs', async () => {
    const other = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax' })],
    });
    const dir = path.join(root, 'init-other', 'model');
    await saveModel(other, dir);
    other.dispose();
    const before = tf.memory().numTensors;
    const { events, callbacks } = recorder();
    // No data where it points: the starting weights are refused before the data is looked for.
    const spec = { ...lenetSpec('init-other', 1), initFrom: dir, dataDir: path.join(root, 'none') };

    await expect(runTrainingJob(spec, { onProgress: callbacks })).rejects.toMatchObject({
      name: 'UserError',
      id: 'argument.invalid',
      message: `invalid training job: the weights of ${dir} do not fit lenet-mnist (lenet): ${dir} holds 2 weights, the model has 10`,
    });
    expect(events).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
    await expect(readdir(spec.checkpointDir!)).rejects.toMatchObject({ code: 'ENOENT' });
    // A missing, empty or damaged folder is the user's input too: one clear error, no stack.
    const nowhere = path.join(root, 'nowhere');
    await expect(runTrainingJob({ ...spec, initFrom: nowhere })).rejects.toMatchObject({
      name: 'UserError',
      id: 'model.missing_files',
      message: `the starting weights cannot be read: Cannot load model from ${nowhere}: ${path.join(nowhere, 'model.json')} does not exist.`,
    });
    const damaged = path.join(root, 'init-other', 'damaged');
    await mkdir(damaged, { recursive: true });
    await writeFile(path.join(damaged, 'model.json'), '{"modelTopology": ');
    await expect(runTrainingJob({ ...spec, initFrom: damaged })).rejects.toMatchObject({
      id: 'model.missing_files',
      message: expect.stringContaining(path.join(damaged, 'model.json')) as unknown,
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an already aborted signal before loading anything', async () => {
    const spec = { ...lenetSpec('never', 1), dataDir: path.join(root, 'nowhere') };
    await expect(runTrainingJob(spec, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('rejects an invalid spec naming every wrong field', async () => {
    const bad = { ...lenetSpec('bad', 1), epochs: 0, batchSize: 4, workers: 8, colour: 'red' };
    expect(trainingJobSpecSchema.safeParse(bad).success).toBe(false);
    await expect(runTrainingJob(bad)).rejects.toThrow(/colour[\s\S]*epochs[\s\S]*workers/);
    await expect(runTrainingJob({ ...lenetSpec('bad', 1), model: 'vgg16' })).rejects.toThrow(
      /no model "vgg16"/,
    );
  });
});
