/**
 * issue 16: the `with=class` job's own code, run in this process (the trainer runs it in a child):
 * it fine-tunes, writes the version, and leaves `tf.memory().numTensors` as it found it, also
 * when it is aborted mid-epoch.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import type { ClassPhoto } from '../../../src/trainer/class-finetune.ts';
import {
  runClassFinetuneJob,
  type ClassFinetuneJobSpec,
} from '../../../src/trainer/class-finetune-job.ts';
import { STUDENTS, studentPhoto } from '../../fixtures/class-photos.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';

let root: string;
const photos: ClassPhoto[] = [];

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(path.join(os.tmpdir(), 'class-job-'));
  await writeBandedIdx(path.join(root, 'data'), 'mnist', { train: 2400, test: 60 });
  for (const s of STUDENTS.slice(0, 5)) {
    for (let d = 0; d < 10; d++) {
      photos.push({
        id: String(photos.length + 1),
        bytes: new Uint8Array(await studentPhoto(d, s)),
        label: d,
        student: `import:${s.name}`,
      });
    }
  }
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const spec = (out: string): ClassFinetuneJobSpec => ({
  kind: 'class-finetune',
  model: 'lenet-mnist',
  baseDir: path.join(PROJECT_ROOT, 'models', 'lenet-mnist'),
  baseVersion: '0',
  dataDir: path.join(root, 'data'),
  outputDir: path.join(root, out),
  photos,
  limits: { maxBytes: 20_000_000, maxPixels: 16_000_000 },
  minPhotos: 40,
  epochs: 1,
  batchSize: 32,
  replay: 600,
  calibrate: false,
  seed: 5,
});

describe('runClassFinetuneJob', () => {
  it('writes the fine-tuned version with its report and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const result = await runClassFinetuneJob(spec('v1'));
    expect(tf.memory().numTensors).toBe(before);
    expect(result.report.photos).toBe(50);
    expect(result.report.after.mnistTest).toBeGreaterThanOrEqual(0);
    expect(result.report.after.mnistTest).toBeLessThanOrEqual(1);
    const meta = JSON.parse(await readFile(path.join(root, 'v1', 'meta.json'), 'utf8')) as {
      testAccuracy: number;
      classFinetune: { datasetFingerprint: string; parent: { version: string } };
    };
    expect(meta.testAccuracy).toBe(result.report.after.mnistTest);
    expect(meta.classFinetune.datasetFingerprint).toBe(result.datasetFingerprint);
    expect(meta.classFinetune.parent.version).toBe('0');
  }, 180_000);

  it('leaks no tensors when aborted mid-epoch, and writes nothing', async () => {
    const abort = new AbortController();
    const before = tf.memory().numTensors;
    await expect(
      runClassFinetuneJob(spec('aborted'), {
        signal: abort.signal,
        onProgress: { onBatchEnd: () => abort.abort(new Error('stop')) },
      }),
    ).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
    expect(existsSync(path.join(root, 'aborted', 'meta.json'))).toBe(false);
  }, 180_000);
});
