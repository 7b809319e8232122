/**
 * The child process of one training job (forked by `run-in-child.ts`): receives the spec, runs
 * `runTrainingJob` (or, for `with=class`, `runClassFinetuneJob`), reports backend, progress and
 * the result over IPC, and exits. A fresh process
 * per job returns the training memory to the system when it ends, and lets cancel kill it.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { isUserError } from '../errors.ts';
import {
  isClassFinetuneJobSpec,
  runClassFinetuneJob,
  type ClassFinetuneJobSpec,
} from '../trainer/class-finetune-job.ts';
import { runTrainingJob, type TrainingCallbacks } from '../trainer/run-training-job.ts';
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';
import {
  etaSeconds,
  type FailureReason,
  type FromChild,
  type JobProgress,
  type JobSpec,
  type ToChild,
} from './protocol.ts';

function send(message: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** SHA-256 over the data set folder's file names and contents (the fixture or the real one). */
async function fingerprint(dir: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for (const name of (await readdir(dir)).sort()) {
      hash.update(name).update(await readFile(path.join(dir, name)));
    }
  } catch {
    hash.update('(missing)');
  }
  return hash.digest('hex');
}

/** The reason of a failure, for the chat. */
function classify(e: unknown): {
  reason: FailureReason;
  command?: string;
  params?: Record<string, number>;
} {
  if (isUserError(e) && e.id === 'classdata.not_enough') {
    const params: Record<string, number> = {};
    for (const [k, v] of Object.entries(e.params)) if (typeof v === 'number') params[k] = v;
    return { reason: 'classdata', params };
  }
  if (isUserError(e) && (e.id === 'dataset.missing' || e.id === 'dataset.corrupt')) {
    const name = typeof e.params.dataset === 'string' ? e.params.dataset : 'mnist';
    return { reason: 'dataset', command: `bin/cnn-classroom download ${name}` };
  }
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return { reason: 'disk' };
  if (e instanceof RangeError || (e as Error).name === 'ZodError') return { reason: 'parameter' };
  return { reason: 'other' };
}

async function run(spec: JobSpec): Promise<void> {
  const abort = new AbortController();
  let nan = false;
  // The pace is timed from the first epoch's start (see etaSeconds).
  let pacedFrom: number | undefined;
  let batchesDone = 0;
  let epochs = 1;
  const report = (p: Omit<JobProgress, 'etaSeconds'>): void => {
    batchesDone++;
    const total = p.epochs * p.batches;
    const done = (p.epoch - 1) * p.batches + p.batch; // epoch is 1-based here
    const eta = etaSeconds(done, total, batchesDone, Date.now() - (pacedFrom ?? Date.now()));
    void send({ type: 'progress', progress: { ...p, etaSeconds: eta } });
  };
  const progress: Progress = {
    onBatchEnd: (b) => {
      if (!Number.isFinite(b.loss)) {
        nan = true;
        abort.abort(
          new Error(`the loss became ${b.loss} at epoch ${b.epoch + 1}, batch ${b.batch}`),
        );
        return;
      }
      report({
        epoch: b.epoch + 1,
        epochs,
        batch: b.batch,
        batches: b.batches,
        loss: b.loss,
        acc: b.acc,
      });
    },
    onEpochBegin: (e) => {
      pacedFrom ??= Date.now();
      epochs = e.epochs;
    },
  };
  const onBackend = (backend: string): void => {
    void send({ type: 'backend', backend, device: deviceName(backend) });
  };
  try {
    await send(
      isClassFinetuneJobSpec(spec)
        ? await classJob(spec, abort.signal, progress, onBackend)
        : await trainingJob(spec, abort.signal, progress, onBackend),
    );
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    await send(
      nan
        ? { type: 'failed', reason: 'nan', message }
        : { type: 'failed', message, ...classify(e) },
    );
  }
}

type Progress = Pick<TrainingCallbacks, 'onBatchEnd' | 'onEpochBegin'>;

async function trainingJob(
  spec: TrainingJobSpecInput,
  signal: AbortSignal,
  progress: Progress,
  onBackend: (backend: string) => void,
): Promise<FromChild> {
  const result = await runTrainingJob(spec, {
    signal,
    onProgress: { ...progress, onTrainBegin: (info) => onBackend(info.backend) },
  });
  return {
    type: 'done',
    testAccuracy: result.metrics.testAccuracy,
    modelDir: result.modelDir,
    history: result.metrics.history.map((r) => ({ ...r })),
    datasetFingerprint: await fingerprint(path.join(spec.dataDir, result.settings.dataset)),
    seconds: result.metrics.seconds,
  };
}

/** issue 16: `/retrain <model> with=class`. */
async function classJob(
  spec: ClassFinetuneJobSpec,
  signal: AbortSignal,
  progress: Progress,
  onBackend: (backend: string) => void,
): Promise<FromChild> {
  const { report, modelDir, datasetFingerprint } = await runClassFinetuneJob(spec, {
    signal,
    onProgress: progress,
    onBackend,
  });
  return {
    type: 'done',
    testAccuracy: report.after.mnistTest,
    modelDir,
    history: report.history.map((r) => ({ ...r })),
    datasetFingerprint,
    seconds: report.seconds,
    classFinetune: {
      parentVersion: spec.baseVersion,
      photos: report.photos,
      students: report.students,
      trainPhotos: report.trainPhotos,
      heldOutPhotos: report.heldOutPhotos,
      heldOutStudents: [...report.heldOutStudents],
      skipped: report.skipped.length,
      before: { ...report.before },
      after: { ...report.after },
      heldOutCorrect: { ...report.heldOutCorrect },
      mnistTestSamples: report.mnistTestSamples,
      promote: report.promote,
      reason: report.reason,
      maxMnistDrop: report.settings.maxMnistDrop,
      settings: { ...report.settings },
    },
  };
}

/** The device the backend computes on, as the job record names it. */
function deviceName(backend: string): string {
  if (backend !== 'tensorflow') return `cpu (${backend})`;
  try {
    const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
    return gpu ? 'GPU (tfjs-node-gpu)' : 'cpu (tfjs-node)';
  } catch {
    return 'cpu';
  }
}

// A worker killed with SIGKILL (OOM killer, `kill -9`) cannot kill this process, and only the
// closed IPC channel tells it: it ends at once rather than training on as an orphan beside the
// worker that takes the job over (both would write the job's checkpoint and staging folders).
// The worker never disconnects on purpose (it kills this process to cancel).
process.once('disconnect', () => process.exit(1));
process.once('message', (m: ToChild) => {
  if (m.type !== 'start') return;
  void run(m.spec).finally(() => process.exit(0));
});
