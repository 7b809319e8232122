/**
 * issue 16: the trainer job of `/retrain <model> with=class`: fine-tunes the **served** version
 * of a LeNet digit model (`lenet-mnist`, `digits-photo`) on the class's labelled photos with
 * MNIST replay (`finetuneOnClass`), and writes the new version's folder with the report in
 * `meta.json` (`classFinetune`). The job's child process runs it (`src/jobs/child.ts`); the
 * photos come from the database through the parent, so this module knows no database.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { renderLearningCurves } from '../imaging/curves.ts';
import { logger } from '../logger.ts';
import { initBackend, type BackendName } from '../ml/backend.ts';
import { loadModel, saveModel } from '../ml/model-io.ts';
import { META_FILE, readModelMeta, type ModelMeta } from '../ml/model-meta.ts';
import type { ImageLimits } from '../ml/preprocess/for-model.ts';
import { calibrateOod } from './calibrate-ood.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import {
  buildClassDataset,
  finetuneOnClass,
  replayOrder,
  type ClassDataset,
  type ClassFinetuneReport,
  type ClassPhoto,
} from './class-finetune.ts';
import { loadDataset } from './datasets/load.ts';
import { progressToCallbacks, type TrainingCallbacks } from './run-training-job.ts';
import { weightsMismatch, type TrainCheckpoint } from './train.ts';

/** Fewest unseen MNIST training digits to re-calibrate the "not a digit" criterion on. */
const MIN_CALIBRATION_DIGITS = 1000;

/** What a class fine-tuning job is asked to do (plain data: it crosses to the child process). */
export interface ClassFinetuneJobSpec {
  readonly kind: 'class-finetune';
  /** The model id (`lenet-mnist`, `digits-photo`). */
  readonly model: string;
  /** The served version's folder, whose weights are fine-tuned (left as they are). */
  readonly baseDir: string;
  /** The served version's number (recorded as the parent in `meta.json`). */
  readonly baseVersion: string;
  /** The data folder holding `mnist/` (replay and test). */
  readonly dataDir: string;
  /** A read-only data folder searched after `dataDir` (`CNN_SHARED_DATA`). */
  readonly sharedDataDir?: string;
  /** Where the new version is written (model.json, weights, meta.json, history). */
  readonly outputDir: string;
  /** This job's checkpoint folder: a job resumed after a dead worker goes on from it. */
  readonly checkpointDir?: string;
  /** The labelled photos that train by default (`trainingLabel`), with their bytes. */
  readonly photos: readonly ClassPhoto[];
  /** Upload limits of the bot's preprocessing. */
  readonly limits: ImageLimits;
  /** Fewest usable photos after preprocessing (`CLASS_MIN_PHOTOS`). */
  readonly minPhotos?: number;
  readonly epochs?: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  /** MNIST training images mixed in. */
  readonly replay?: number;
  readonly seed?: number;
  /** Re-calibrate the "not a digit" criterion when the served version has one (default true). */
  readonly calibrate?: boolean;
}

/** True for a spec of this job (the child tells it from a `runTrainingJob` spec). */
export function isClassFinetuneJobSpec(spec: object): spec is ClassFinetuneJobSpec {
  return (spec as { kind?: unknown }).kind === 'class-finetune';
}

/**
 * True for the models this job fine-tunes: the course's LeNet layers or the wider LeNet of
 * `digitnet.ts` (`digits-photo`), on 28x28 digits.
 */
export function isLeNetDigitModel(meta: Pick<ModelMeta, 'architecture' | 'preprocess'>): boolean {
  return (
    (meta.architecture === 'lenet' || meta.architecture === 'digitnet') &&
    meta.preprocess === 'mnist-digit'
  );
}

/** What {@link runClassFinetuneJob} returns. */
export interface ClassFinetuneJobResult {
  readonly modelDir: string;
  readonly report: ClassFinetuneReport;
  /** SHA-256 (hex) of the photos used: ids, labels, students and bytes, in id order. */
  readonly datasetFingerprint: string;
  /** The `meta.json` written (the parent's, with `testAccuracy` and `classFinetune` new). */
  readonly meta: Record<string, unknown>;
  readonly backend: string;
}

/**
 * SHA-256 (hex) of a class data set as trained on: each usable photo's id, label, student and
 * the SHA-256 of its bytes, sorted by id (equal photos and labels give equal fingerprints).
 */
export function classDataFingerprint(
  photos: readonly ClassPhoto[],
  used: Pick<ClassDataset, 'ids'>,
): string {
  const keep = new Set(used.ids);
  const lines = photos
    .filter((p) => keep.has(p.id))
    .map(
      (p) =>
        `${p.id}\t${p.label}\t${p.student}\t${createHash('sha256').update(p.bytes).digest('hex')}`,
    )
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/**
 * Runs the job: reads the served version, preprocesses the photos exactly as the bot does
 * (`buildClassDataset`), loads MNIST (train for replay, test for the figures), fine-tunes with
 * `finetuneOnClass` (split by student, MNIST replay, the LeNet recipe's augmentation),
 * re-calibrates the "not a digit" criterion on MNIST training digits the replay did not use,
 * and writes `spec.outputDir` with `meta.json` = the parent's plus `testAccuracy` (MNIST test
 * after) and `classFinetune` (the report, the parent version, the data fingerprint).
 * A checkpoint of each epoch is kept in `spec.checkpointDir` (fingerprint: the settings, the
 * parent version and the photos), so a job resumed after a dead worker goes on from it.
 *
 * Tensors: the model is disposed at the end, also when the job fails or is aborted.
 * @throws {UserError} `classdata.not_enough` when fewer than `minPhotos` photos survive the
 *   preprocessing; the data set loaders' errors (`dataset.missing`...).
 * @throws {RangeError} for a model that is not a LeNet digit model.
 * @throws the signal's reason when aborted.
 */
export async function runClassFinetuneJob(
  spec: ClassFinetuneJobSpec,
  options: {
    readonly signal?: AbortSignal;
    readonly onProgress?: Pick<TrainingCallbacks, 'onEpochBegin' | 'onBatchEnd' | 'onEpochEnd'>;
    readonly backend?: BackendName | undefined;
    /** Called once the backend is started. */
    readonly onBackend?: (backend: string) => void;
  } = {},
): Promise<ClassFinetuneJobResult> {
  const { signal, onProgress: cb = {} } = options;
  signal?.throwIfAborted();
  const backend = await initBackend({ backend: options.backend });
  options.onBackend?.(backend.name);
  const meta = await readModelMeta(spec.baseDir);
  if (!isLeNetDigitModel(meta)) {
    throw new RangeError(
      `${spec.model} is a ${meta.architecture} model for ${meta.preprocess} inputs: with=class fine-tunes LeNet digit models only`,
    );
  }
  const classSet = await buildClassDataset(spec.photos, meta, spec.limits);
  const locate = spec.sharedDataDir === undefined ? {} : { sharedDataDir: spec.sharedDataDir };
  const mnistTrain = await loadDataset('mnist', 'train', spec.dataDir, locate);
  const mnistTest = await loadDataset('mnist', 'test', spec.dataDir, locate);
  signal?.throwIfAborted();
  const datasetFingerprint = classDataFingerprint(spec.photos, classSet);
  const seed = spec.seed ?? 1;
  const settings = {
    ...(spec.minPhotos === undefined ? {} : { minPhotos: spec.minPhotos }),
    ...(spec.epochs === undefined ? {} : { epochs: spec.epochs }),
    ...(spec.batchSize === undefined ? {} : { batchSize: spec.batchSize }),
    ...(spec.learningRate === undefined ? {} : { learningRate: spec.learningRate }),
    ...(spec.replay === undefined ? {} : { replay: spec.replay }),
    seed,
  };
  const fingerprint = JSON.stringify({
    kind: spec.kind,
    model: spec.model,
    parent: spec.baseVersion,
    photos: datasetFingerprint,
    ...settings,
  });
  const model = await loadModel(spec.baseDir);
  try {
    let resume: TrainCheckpoint | undefined;
    if (spec.checkpointDir) {
      const found = await loadCheckpoint(spec.checkpointDir, fingerprint).catch(
        (e: unknown) => void logger.warn({ err: e }, 'class fine-tune: checkpoint not resumed'),
      );
      const mismatch = found && weightsMismatch(model, found.weights);
      if (found && !mismatch) resume = found;
      if (resume) logger.info({ epochsDone: resume.epochsDone }, 'class fine-tune: resumed');
      else if (mismatch) logger.warn({ mismatch }, 'class fine-tune: checkpoint not resumed');
    }
    const checkpointDir = spec.checkpointDir;
    const report = await finetuneOnClass(model, classSet, mnistTrain, mnistTest, {
      ...settings,
      ...(signal ? { signal } : {}),
      ...(resume ? { resume } : {}),
      ...(checkpointDir
        ? { onCheckpoint: (ck) => saveCheckpoint(checkpointDir, fingerprint, ck) }
        : {}),
      onProgress: progressToCallbacks(cb),
    });
    signal?.throwIfAborted();
    const parent = JSON.parse(await readFile(path.join(spec.baseDir, META_FILE), 'utf8')) as Record<
      string,
      unknown
    >;
    let ood = meta.ood;
    // MNIST training digits the replay did not show, as `train` holds out its validation part.
    const unused = replayOrder(mnistTrain.count, seed).subarray(report.settings.replay);
    const recalibrate = ood !== undefined && spec.calibrate !== false;
    if (recalibrate && unused.length >= MIN_CALIBRATION_DIGITS) {
      ood = await calibrateOod(model, mnistTrain, unused, spec.dataDir, locate);
      signal?.throwIfAborted();
    } else if (recalibrate) {
      logger.warn(
        { unused: unused.length },
        "class fine-tune: too few MNIST digits left for calibration; the parent's criterion is kept",
      );
    }
    const { history, ...summary } = report;
    const outMeta: Record<string, unknown> = {
      ...parent,
      id: spec.model,
      testAccuracy: report.after.mnistTest,
      testSamples: mnistTest.count,
      ...(ood ? { ood } : {}),
      classFinetune: {
        parent: { id: spec.model, version: spec.baseVersion },
        datasetFingerprint,
        oodRecalibrated: ood !== meta.ood,
        backend: backend.name,
        date: new Date().toISOString(),
        ...summary,
      },
    };
    await saveModel(model, spec.outputDir, {
      [META_FILE]: `${JSON.stringify(outMeta, null, 2)}\n`,
      'history.json': `${JSON.stringify(history, null, 2)}\n`,
      'history.png': await renderLearningCurves(
        [{ label: `${spec.model} (class)`, history }],
        spec.model,
      ),
    });
    logger.info(
      { id: spec.model, outDir: spec.outputDir, before: report.before, after: report.after },
      'class fine-tune saved',
    );
    return {
      modelDir: spec.outputDir,
      report,
      datasetFingerprint,
      meta: outMeta,
      backend: backend.name,
    };
  } finally {
    model.dispose();
  }
}
