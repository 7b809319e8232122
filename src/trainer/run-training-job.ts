/**
 * One training job, callable from anywhere: the command line (`bin/cnn-classroom train`), a job
 * worker or a test hand {@link runTrainingJob} a plain, validated spec and get the metrics and
 * the saved model's folder back. Progress goes through one callbacks object, as Keras'
 * `callbacks=` (onEpochBegin, onBatchEnd, onEpochEnd, onCheckpoint); an `AbortSignal` stops it.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../errors.ts';
import { renderLearningCurves } from '../imaging/curves.ts';
import { logger } from '../logger.ts';
import { initBackend, type BackendName } from '../ml/backend.ts';
import { saveModel } from '../ml/model-io.ts';
import {
  META_FILE,
  readModelMeta,
  type ModelMeta,
  type ModelQuantization,
} from '../ml/model-meta.ts';
import { applyQuantization, weightBytes } from '../ml/quantize.ts';
import { calibrateOod } from './calibrate-ood.ts';
import { loadCheckpoint, readCheckpointFingerprint, saveCheckpoint } from './checkpoint.ts';
import { appendLabelled, loadImageFolder } from './datasets/image-folder.ts';
import { loadDataset } from './datasets/load.ts';
import type { DatasetName } from './datasets/types.ts';
import {
  parseSettingsFingerprint,
  settingsDifference,
  settingsFingerprint,
  trainCommand,
  trainingJobSpecSchema,
  type TrainingJobSpec,
  type TrainingJobSpecInput,
  type TrainingSettings,
} from './job-spec.ts';
import { readInitialWeights, type InitFromRecord } from './init-weights.ts';
import { RECIPES, SCHEDULES, type Recipe } from './recipes.ts';
import {
  evaluateClassifier,
  setHostWeights,
  trainClassifier,
  weightsMismatch,
  type EpochRecord,
  type LabelledImages,
  type TrainCheckpoint,
  type TrainProgress,
  type TrainResult,
} from './train.ts';

export {
  QUANTIZE_ABOVE_BYTES,
  trainingJobSpecSchema,
  type TrainingJobSpec,
  type TrainingJobSpecInput,
  type TrainingSettings,
} from './job-spec.ts';

/** What {@link TrainingCallbacks.onTrainBegin} reports once the data and the model are ready. */
export interface TrainBeginInfo {
  readonly model: string;
  readonly dataset: DatasetName;
  /** Images trained and validated on (extra labelled photos included, times their repeat). */
  readonly trainSamples: number;
  /** Extra labelled photos used (before repetition) and the files refused; absent without any. */
  readonly extra?: { readonly count: number; readonly skipped: readonly string[] };
  /** Worker threads training (1: this thread). */
  readonly workers: number;
  /** Whether `spec.workers` was ignored because the backend is not wasm (tfjs-node uses every core). */
  readonly workersIgnored: boolean;
  /** The TF.js backend, e.g. `wasm`. */
  readonly backend: string;
  readonly epochs: number;
  /** The settings, every default resolved; their JSON is the checkpoint fingerprint. */
  readonly settings: TrainingSettings;
  /** The equivalent `bin/cnn-classroom train` command, as recorded in `meta.json`. */
  readonly command: string;
  /**
   * The saved model whose weights start the run (`spec.initFrom`): its folder, and what the new
   * `meta.json` will record of it. A resumed run goes on from its checkpoint's weights instead.
   */
  readonly initFrom?: { readonly dir: string } & InitFromRecord;
  /** The checkpoint resumed, with the epochs it had done. */
  readonly resumed?: { readonly dir: string; readonly epochsDone: number };
  /** Why a checkpoint found in `checkpointDir` was not resumed (it is replaced after an epoch). */
  readonly notResumed?: {
    readonly dir: string;
    readonly reason: 'other-settings' | 'damaged' | 'architecture';
    /** Human-readable details: the other run's command, the damage, the weight that differs. */
    readonly detail: string;
  };
}

/** The 0-based epoch starting, of `epochs`, and its count of batches. */
export interface EpochBeginInfo {
  readonly epoch: number;
  readonly epochs: number;
  readonly batches: number;
}

/** A batch done: 0-based epoch, 1-based batch of `batches`, running means over the epoch. */
export interface BatchEndInfo {
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  /** Mean categorical cross-entropy of the epoch's batches so far. */
  readonly loss: number;
  /** Mean top-1 accuracy of the epoch's batches so far, 0..1. */
  readonly acc: number;
}

/** A checkpoint written: `epochsDone` of `epochs` whole epochs are saved in `dir`. */
export interface CheckpointInfo {
  readonly dir: string;
  readonly epochsDone: number;
  readonly epochs: number;
}

/**
 * The progress of a job, as Keras' callbacks: every method optional, called in this order:
 * `onTrainBegin`, then per epoch `onEpochBegin`, `onBatchEnd` per batch, `onEpochEnd`,
 * `onCheckpoint`. Called synchronously from the training loop; a returned promise is not awaited
 * (throttle slow work such as editing a chat message yourself). An exception thrown by a callback
 * ends the job with it.
 *
 * @example
 * await runTrainingJob(spec, {
 *   onProgress: { onEpochEnd: (r) => console.log(`epoch ${r.epoch}: val_acc ${r.valAcc}`) },
 * });
 */
export interface TrainingCallbacks {
  onTrainBegin?(info: TrainBeginInfo): void;
  onEpochBegin?(info: EpochBeginInfo): void;
  onBatchEnd?(info: BatchEndInfo): void;
  /** The epoch's record (1-based `epoch`), as Keras' `History`. */
  onEpochEnd?(record: EpochRecord): void;
  onCheckpoint?(info: CheckpointInfo): void;
}

/** Routes `trainClassifier`'s progress reports to the Keras-style {@link TrainingCallbacks}. */
export function progressToCallbacks(
  cb: Pick<TrainingCallbacks, 'onEpochBegin' | 'onBatchEnd' | 'onEpochEnd'>,
): (p: TrainProgress) => void {
  return (p) => {
    if (p.kind === 'epoch-start') {
      cb.onEpochBegin?.({ epoch: p.epoch, epochs: p.epochs, batches: p.batches });
    } else if (p.kind === 'batch') {
      const { epoch, batch, batches, loss, acc } = p;
      cb.onBatchEnd?.({ epoch, batch, batches, loss, acc });
    } else {
      cb.onEpochEnd?.(p.record);
    }
  };
}

/** Options of {@link runTrainingJob}. */
export interface RunTrainingJobOptions {
  /**
   * Stops the job: between batches while training (within one batch of the abort), or between
   * its other steps (loading, evaluation, calibration). The checkpoint of the last whole epoch
   * stays in `checkpointDir`, and the same spec resumes from it.
   */
  readonly signal?: AbortSignal;
  readonly onProgress?: TrainingCallbacks;
  /**
   * The backend to force when this call is the first to start one in the process (the
   * configuration's `TFJS_BACKEND`); see `initBackend`.
   */
  readonly backend?: BackendName | undefined;
}

/** The figures of a finished job. */
export interface TrainingMetrics {
  /** Top-1 accuracy of the weights as shipped on the test split, 0..1. */
  readonly testAccuracy: number;
  /** The same before quantizing, when the weights were shipped as uint8. */
  readonly float32TestAccuracy?: number;
  readonly testSamples: number;
  /** Every epoch, those of a resumed run included. */
  readonly history: readonly EpochRecord[];
  /** Epoch (1-based) whose weights were kept: the last, or the best under early stopping. */
  readonly keptEpoch: number;
  readonly stopped: TrainResult['stopped'];
  /** Training wall time of the epochs run now (not those resumed), seconds. */
  readonly seconds: number;
}

/** What {@link runTrainingJob} returns. */
export interface TrainingJobResult {
  /** The model's folder: `spec.outputDir`. */
  readonly modelDir: string;
  /**
   * Whether the model was written. False when `outputDir` held a model of higher test accuracy
   * and `spec.force` was not set: that model is left as it was.
   */
  readonly saved: boolean;
  /** Test accuracy of the model that was kept in `outputDir` instead, when `saved` is false. */
  readonly keptTestAccuracy?: number;
  readonly metrics: TrainingMetrics;
  /** The `meta.json` written (or that would have been). */
  readonly meta: ModelMeta;
  /** Set when the weights were shipped as uint8 (`spec.quantizeAboveBytes`). */
  readonly quantization?: ModelQuantization;
  readonly settings: TrainingSettings;
  readonly command: string;
}

/** Fewest images a worker's shard of a batch should hold (batch-norm statistics, per-step overhead). */
export const MIN_SHARD_ROWS = 32;

/** Every core, but no shard of the batch under {@link MIN_SHARD_ROWS} images; at least 1. */
export function defaultWorkers(batchSize: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(batchSize / MIN_SHARD_ROWS)));
}

/**
 * The weights a job ships and their test accuracy: `model` itself when its float32 weights
 * are at most `aboveBytes`; otherwise `model` with its weights replaced, in place, by their uint8
 * round trip (what loading the quantized save gives), evaluated again on `test`.
 *
 * @param float32Accuracy the accuracy already measured on `test` before quantizing, 0..1.
 * @returns `testAccuracy` of the shipped weights, 0..1, and `quantization` for `meta.json`
 *   (absent when the weights stay float32).
 */
export async function weightsToShip(
  model: tf.LayersModel,
  test: LabelledImages,
  float32Accuracy: number,
  aboveBytes: number,
): Promise<{ testAccuracy: number; quantization?: ModelQuantization }> {
  const float32Bytes = weightBytes(model);
  if (float32Bytes <= aboveBytes) return { testAccuracy: float32Accuracy };
  const { bytes } = applyQuantization(model, 'uint8');
  const testAccuracy = (await evaluateClassifier(model, test)).acc;
  return {
    testAccuracy,
    quantization: { dtype: 'uint8', float32TestAccuracy: float32Accuracy, float32Bytes, bytes },
  };
}

type ResumeDecision =
  | { readonly checkpoint: TrainCheckpoint }
  | { readonly checkpoint?: undefined; readonly notResumed?: TrainBeginInfo['notResumed'] };

/** The checkpoint in `dir` to resume, if it is of the same settings and fits `model`. */
async function resumableCheckpoint(
  dir: string,
  fingerprint: string,
  model: tf.LayersModel,
  describe: (fingerprint: string) => string,
): Promise<ResumeDecision> {
  let found: TrainCheckpoint | undefined;
  try {
    found = await loadCheckpoint(dir, fingerprint);
  } catch (e) {
    return { notResumed: { dir, reason: 'damaged', detail: (e as Error).message } };
  }
  if (!found) {
    const other = await readCheckpointFingerprint(dir);
    return other === undefined
      ? {}
      : { notResumed: { dir, reason: 'other-settings', detail: describe(other) } };
  }
  const mismatch = weightsMismatch(model, found.weights);
  if (mismatch) return { notResumed: { dir, reason: 'architecture', detail: mismatch } };
  return { checkpoint: found };
}

/**
 * Validates a training job's spec, throwing one error that lists every problem.
 * @throws {Error} naming each invalid field.
 */
export function parseTrainingJobSpec(input: TrainingJobSpecInput): TrainingJobSpec {
  const parsed = trainingJobSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new Error(`invalid training job: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  if (!RECIPES[parsed.data.model]) {
    throw new Error(
      `invalid training job: no model "${parsed.data.model}" (known: ${Object.keys(RECIPES).join(', ')})`,
    );
  }
  return parsed.data;
}

/**
 * Trains one of the models of `RECIPES` as `spec` says and saves it: loads the data set (and the
 * extra labelled photos), builds the model from its seed, resumes the checkpoint of the same
 * settings in `spec.checkpointDir` when there is one, trains with Adam (see `trainClassifier`),
 * writes a checkpoint and `<checkpointDir>-history.png` after every epoch, evaluates on the test
 * split, ships uint8 weights above `spec.quantizeAboveBytes`, calibrates the out-of-distribution
 * criterion of digit models, and writes `spec.outputDir` (model.json, weights, meta.json,
 * history.json, history.png) unless it holds a model of higher test accuracy and `spec.force`
 * is not set. The checkpoint's fingerprint is the JSON of the resolved settings
 * ({@link TrainingSettings}); `meta.json` records the equivalent `bin/cnn-classroom train`
 * command, which reproduces the run.
 *
 * Logs through the process logger only; nothing is printed. Tensors: the model is disposed at the
 * end, so `tf.memory().numTensors` is as before, also when the job fails or is aborted.
 *
 * @param spec a plain object validated by {@link trainingJobSpecSchema}.
 * @returns the metrics and the model's folder.
 * @throws {Error} for an invalid spec (every problem named), an unknown model, a data set of
 *   another image shape than the model's, or extra data of unknown classes.
 * @throws {UserError} of the data set loaders (`dataset.missing`, `dataset.corrupt`...);
 *   `model.missing_files` when `spec.initFrom` cannot be read, `argument.invalid` when its
 *   weights do not fit the model's architecture (both before any data is loaded).
 * @throws the signal's reason (an `AbortError` `DOMException` by default) when aborted.
 * @example
 * const { modelDir, metrics } = await runTrainingJob(
 *   { model: 'lenet-mnist', dataDir: 'data', outputDir: 'models/lenet-mnist', epochs: 1 },
 *   { signal: AbortSignal.timeout(3_600_000), onProgress: { onEpochEnd: (r) => log(r) } },
 * );
 */
export async function runTrainingJob(
  spec: TrainingJobSpecInput,
  options: RunTrainingJobOptions = {},
): Promise<TrainingJobResult> {
  const job = parseTrainingJobSpec(spec);
  const recipe = RECIPES[job.model] as Recipe;
  const { signal, onProgress: cb = {} } = options;
  signal?.throwIfAborted();
  const d = recipe.defaults;
  const batchSize = job.batchSize ?? d.batchSize;
  if (job.workers !== undefined && job.workers > batchSize) {
    throw new RangeError(
      `invalid training job: ${job.workers} workers cannot split a batch of ${batchSize} (at most one worker per image)`,
    );
  }
  const backend = await initBackend({ backend: options.backend });
  // Starting weights are read and checked before any data is loaded: a wrong folder fails at once.
  const init = job.initFrom === undefined ? undefined : await readInitialWeights(job.initFrom);
  if (init) {
    const probe = recipe.build(job.seed);
    const mismatch = weightsMismatch(probe, init.weights, init.dir);
    probe.dispose();
    if (mismatch) {
      throw new UserError(
        'argument.invalid',
        `invalid training job: the weights of ${init.dir} do not fit ${job.model} (${recipe.architecture}): ${mismatch}`,
        { value: init.dir, usage: `a saved ${recipe.architecture} model's folder` },
      );
    }
    signal?.throwIfAborted();
  }
  const dataset = job.dataset ?? recipe.dataset;
  const locate = job.sharedDataDir === undefined ? {} : { sharedDataDir: job.sharedDataDir };
  let train = await loadDataset(dataset, 'train', job.dataDir, locate);
  const test = await loadDataset(dataset, 'test', job.dataDir, locate);
  signal?.throwIfAborted();
  let extra: TrainBeginInfo['extra'];
  let extraDigest: string | undefined;
  if (job.extraData) {
    const photos = await loadImageFolder(job.extraData.dir, train.classNames, {
      preprocess: recipe.preprocess,
      inputShape: [train.height, train.width, train.channels],
    });
    train = appendLabelled(train, photos, job.extraData.repeat);
    extra = { count: photos.count, skipped: photos.skipped };
    extraDigest = createHash('sha256')
      .update(`${photos.digest} x${job.extraData.repeat}`)
      .digest('hex');
    signal?.throwIfAborted();
  }
  const augments = recipe.augment !== undefined;
  const hasOutliers = recipe.outliers !== undefined;
  const base: Omit<TrainingSettings, 'workers'> = {
    model: job.model,
    dataset,
    epochs: job.epochs ?? d.epochs,
    batchSize,
    learningRate: job.learningRate ?? d.learningRate,
    schedule: job.schedule ?? d.schedule,
    patience: job.patience ?? d.patience ?? 0,
    seed: job.seed,
    validationSplit: job.validationSplit ?? d.validationSplit,
    augment: job.augment && augments,
    outliers: job.outliers && hasOutliers,
    ...(extraDigest !== undefined ? { extraData: extraDigest } : {}),
    ...(init ? { initFrom: init.record.sha256 } : {}),
  };
  const commandOf = (s: TrainingSettings): string =>
    trainCommand(s, { dataset: recipe.dataset, augments, outliers: hasOutliers });
  const checkpointDir = job.checkpointDir;
  let workers = 1;
  const workersIgnored = backend.name !== 'wasm' && job.workers !== undefined && job.workers !== 1;
  if (backend.name !== 'wasm') {
    // Workers replicate the wasm backend; tfjs-node uses every core itself.
  } else if (job.workers !== undefined) {
    workers = job.workers;
  } else {
    workers = defaultWorkers(batchSize);
    // The same spec resumes on a machine with another core count: keep the checkpoint's.
    const other =
      job.resume && checkpointDir ? await readCheckpointFingerprint(checkpointDir) : undefined;
    const theirs = other === undefined ? undefined : parseSettingsFingerprint(other)?.workers;
    if (
      theirs !== undefined &&
      theirs <= batchSize &&
      other === settingsFingerprint({ ...base, workers: theirs })
    ) {
      workers = theirs;
    }
  }
  const settings: TrainingSettings = { ...base, workers };
  const fingerprint = settingsFingerprint(settings);
  const command = commandOf(settings);
  const { epochs, learningRate: lr, patience, validationSplit, seed } = settings;
  const scheduleFn = SCHEDULES[settings.schedule];

  const model = recipe.build(seed);
  try {
    const [h, w, c] = model.inputs[0]?.shape.slice(1) ?? [];
    if (h !== train.height || w !== train.width || c !== train.channels) {
      throw new Error(
        `invalid training job: ${dataset} images are ${train.height}x${train.width}x${train.channels}, ${job.model} takes ${h}x${w}x${c}`,
      );
    }
    if (init) setHostWeights(model, init.weights); // a resumed checkpoint's weights replace them
    const decision: ResumeDecision =
      job.resume && checkpointDir
        ? await resumableCheckpoint(checkpointDir, fingerprint, model, (other) => {
            const s = parseSettingsFingerprint(other);
            if (!s) return other;
            const why = settingsDifference(s, settings);
            return why ? `${commandOf(s)}; ${why}` : commandOf(s);
          })
        : {};
    const resume = decision.checkpoint;
    cb.onTrainBegin?.({
      model: job.model,
      dataset,
      trainSamples: train.count,
      ...(extra ? { extra } : {}),
      workers,
      workersIgnored,
      backend: backend.name,
      epochs,
      settings,
      command,
      ...(init ? { initFrom: { dir: init.dir, ...init.record } } : {}),
      ...(resume && checkpointDir
        ? { resumed: { dir: checkpointDir, epochsDone: resume.epochsDone } }
        : {}),
      ...(!decision.checkpoint && decision.notResumed ? { notResumed: decision.notResumed } : {}),
    });
    const outliers =
      settings.outliers && recipe.outliers
        ? await recipe.outliers(job.dataDir, locate, signal)
        : undefined;
    signal?.throwIfAborted();
    const result = await trainClassifier(model, train, {
      epochs,
      batchSize,
      validationSplit,
      seed,
      learningRate: (e) => scheduleFn(lr, e, epochs),
      ...(settings.augment && recipe.augment ? { trainFiller: recipe.augment(train) } : {}),
      ...(outliers ? { outliers } : {}),
      ...(patience > 0 ? { earlyStopping: { patience } } : {}),
      ...(resume ? { resume } : {}),
      workers,
      ...(signal ? { signal } : {}),
      ...(checkpointDir
        ? {
            onCheckpoint: async (ck: TrainCheckpoint) => {
              await saveCheckpoint(checkpointDir, fingerprint, ck);
              await writeFile(
                `${checkpointDir}-history.png`,
                await renderLearningCurves([{ label: job.model, history: ck.history }], job.model),
              );
              cb.onCheckpoint?.({ dir: checkpointDir, epochsDone: ck.epochsDone, epochs });
            },
          }
        : {}),
      onProgress: progressToCallbacks(cb),
    });
    signal?.throwIfAborted();
    const float32 = await evaluateClassifier(model, test);
    const { testAccuracy, quantization } = await weightsToShip(
      model,
      test,
      float32.acc,
      job.quantizeAboveBytes ?? Infinity,
    );
    const history = result.history;
    const meta: ModelMeta = {
      id: job.model,
      architecture: recipe.architecture,
      dataset,
      inputShape: [train.height, train.width, train.channels],
      preprocess: recipe.preprocess,
      classNames: [...train.classNames],
      testAccuracy,
      testSamples: test.count,
      training: {
        epochs: history.length,
        keptEpoch: result.keptEpoch,
        batchSize,
        learningRate: lr,
        schedule: settings.schedule,
        augmentation: settings.augment,
        seconds: Math.round(history.reduce((sum, r) => sum + r.seconds, 0)),
        backend: backend.name,
        date: new Date().toISOString(),
        seed,
        validationSplit,
        samplesPerSec: Math.round(
          history.reduce((sum, r) => sum + r.samplesPerSec, 0) / Math.max(1, history.length),
        ),
        workers,
        command,
        ...(init ? { initFrom: init.record } : {}),
      },
      ...(quantization ? { quantization } : {}),
    };
    const metrics: TrainingMetrics = {
      testAccuracy,
      ...(quantization ? { float32TestAccuracy: float32.acc } : {}),
      testSamples: test.count,
      history,
      keptEpoch: result.keptEpoch,
      stopped: result.stopped,
      seconds: result.seconds,
    };
    const common = {
      modelDir: job.outputDir,
      metrics,
      meta,
      ...(quantization ? { quantization } : {}),
      settings,
      command,
    };
    const old = await readModelMeta(job.outputDir).catch(() => undefined);
    if (old?.testAccuracy !== undefined && old.testAccuracy > testAccuracy && !job.force) {
      return { ...common, saved: false, keptTestAccuracy: old.testAccuracy };
    }
    if (recipe.calibrateOod && job.calibrate) {
      signal?.throwIfAborted();
      meta.ood = await calibrateOod(model, train, result.validationIndices, job.dataDir, locate);
    }
    signal?.throwIfAborted();
    await saveModel(
      model,
      job.outputDir,
      {
        [META_FILE]: JSON.stringify(meta, null, 2) + '\n',
        'history.json': JSON.stringify(history, null, 2) + '\n',
        'history.png': await renderLearningCurves([{ label: job.model, history }], job.model),
      },
      quantization ? { quantize: quantization.dtype } : {},
    );
    logger.info(
      { id: job.model, outDir: job.outputDir, testAccuracy, quantization },
      'model saved',
    );
    return { ...common, saved: true };
  } finally {
    model.dispose();
  }
}
