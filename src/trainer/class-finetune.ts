/**
 * issue 16: fine-tuning the served digit model on the class's own labelled photos.
 *
 * The photos go through exactly the bot's preprocessing (`preprocessForModel`, the same
 * function `/predict` runs), are split **by student** (all of a student's photos on one side, so
 * the held-out accuracy measures handwriting the model has not seen), and the training part is
 * mixed with MNIST replay so the model does not forget MNIST (rehearsal: Robins 1995,
 * "Catastrophic forgetting, rehearsal and pseudorehearsal"). Both parts get the digit
 * augmentation of the LeNet recipe. The result is judged on the held-out class photos and on
 * the MNIST test set, before and after; it may be promoted only if the class accuracy improves
 * and MNIST test accuracy drops by at most {@link ClassFinetuneOptions.maxMnistDrop}.
 */
import type * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { isUserError, UserError } from '../errors.ts';
import type { ModelMeta } from '../ml/model-meta.ts';
import { preprocessForModel, type ImageLimits } from '../ml/preprocess/for-model.ts';
import { augmentDigitBatch } from './augment.ts';
import { addWritingVariant } from './digit-variants.ts';
import {
  evaluateClassifier,
  shuffledIndices,
  trainClassifier,
  type EpochRecord,
  type LabelledImages,
  type TrainCheckpoint,
  type TrainProgress,
} from './train.ts';

/** One labelled class photo, as the data side hands it over. */
export interface ClassPhoto {
  /** The submission id (for reports). */
  readonly id: string;
  /** The stored image bytes, as the student sent them. */
  readonly bytes: Uint8Array;
  /** The class index of its training label. */
  readonly label: number;
  /** Who sent it (`platform:userId`): the unit of the held-out split. */
  readonly student: string;
}

/** The class photos after the bot's preprocessing. */
export interface ClassDataset {
  /** uint8 `[count, 28, 28, 1]`, 0..255 (the pipeline's [0, 1] output times 255, rounded). */
  readonly data: LabelledImages;
  readonly students: readonly string[];
  readonly ids: readonly string[];
  /** Photos the preprocessing refused (no ink, unreadable), by id, with the error id. */
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

/**
 * Runs every photo through the bot's preprocessing for `meta`.
 * @returns the dataset; photos the pipeline refuses are listed in `skipped`, not thrown.
 */
export async function buildClassDataset(
  photos: readonly ClassPhoto[],
  meta: Pick<ModelMeta, 'preprocess' | 'inputShape'>,
  limits: ImageLimits,
): Promise<ClassDataset> {
  const [height, width, channels] = meta.inputShape;
  const per = height * width * channels;
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  const students: string[] = [];
  const ids: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  for (const p of photos) {
    try {
      const input = await preprocessForModel(meta, p.bytes, limits);
      const u8 = new Uint8Array(per);
      for (let i = 0; i < per; i++)
        u8[i] = Math.round(Math.min(1, Math.max(0, input.data[i]!)) * 255);
      images.push(u8);
      labels.push(p.label);
      students.push(p.student);
      ids.push(p.id);
    } catch (e) {
      if (!isUserError(e)) throw e;
      skipped.push({ id: p.id, reason: e.id });
    }
  }
  const all = new Uint8Array(images.length * per);
  images.forEach((img, i) => all.set(img, i * per));
  return {
    data: {
      images: all,
      labels: Uint8Array.from(labels),
      count: images.length,
      height,
      width,
      channels,
    },
    students,
    ids,
    skipped,
  };
}

/**
 * Splits students (not photos) into a training and a held-out group: students in a seeded random
 * order join the held-out group until it holds at least `share` of the photos.
 *
 * @param students the student of each photo.
 * @returns photo indices of each part and the held-out students.
 * @throws {Error} with fewer than two students (nothing to hold out by student).
 */
export function splitByStudent(
  students: readonly string[],
  share: number,
  seed: number,
): { train: number[]; heldOut: number[]; heldOutStudents: string[] } {
  const unique = [...new Set(students)].sort();
  if (unique.length < 2)
    throw new Error('a split by student needs photos of two students at least');
  const order = shuffledIndices(unique.length, seedrandom(`split-${seed}`));
  const count = new Map<string, number>();
  for (const s of students) count.set(s, (count.get(s) ?? 0) + 1);
  const held = new Set<string>();
  let heldPhotos = 0;
  for (const k of order) {
    if (heldPhotos >= share * students.length || held.size === unique.length - 1) break;
    const s = unique[k]!;
    held.add(s);
    heldPhotos += count.get(s) ?? 0;
  }
  const train: number[] = [];
  const heldOut: number[] = [];
  students.forEach((s, i) => (held.has(s) ? heldOut : train).push(i));
  return { train, heldOut, heldOutStudents: [...held].sort() };
}

/** The split that holds out exactly `held` (students absent from the photos hold out nothing). */
function splitGiven(
  students: readonly string[],
  held: readonly string[],
): { train: number[]; heldOut: number[]; heldOutStudents: string[] } {
  const set = new Set(held);
  const train: number[] = [];
  const heldOut: number[] = [];
  students.forEach((s, i) => (set.has(s) ? heldOut : train).push(i));
  if (train.length === 0 || heldOut.length === 0) {
    throw new Error('the held-out students must leave photos on both sides');
  }
  return { train, heldOut, heldOutStudents: [...set].filter((s) => students.includes(s)).sort() };
}

/**
 * Deals the students into `k` folds of about equal photo counts (largest first, each to the
 * fold with the fewest photos so far, ties broken by a seeded order), for cross-validation by
 * student: every student is held out exactly once.
 * @throws {Error} when there are fewer students than folds, or `k` < 2.
 */
export function studentFolds(students: readonly string[], k: number, seed: number): string[][] {
  const unique = [...new Set(students)].sort();
  if (k < 2 || unique.length < k) {
    throw new Error(`${k} folds need at least ${Math.max(2, k)} students, got ${unique.length}`);
  }
  const count = new Map<string, number>();
  for (const s of students) count.set(s, (count.get(s) ?? 0) + 1);
  const order = shuffledIndices(unique.length, seedrandom(`folds-${seed}`));
  const shuffled = Array.from(order, (i) => unique[i]!);
  shuffled.sort((a, b) => (count.get(b) ?? 0) - (count.get(a) ?? 0));
  const folds: string[][] = Array.from({ length: k }, () => []);
  const sizes = new Array<number>(k).fill(0);
  for (const s of shuffled) {
    const f = sizes.indexOf(Math.min(...sizes));
    folds[f]!.push(s);
    sizes[f]! += count.get(s) ?? 0;
  }
  return folds.map((f) => f.sort());
}

/** Concatenates the samples `indices` of several image sets of one shape. */
function gather(
  parts: readonly { data: LabelledImages; indices: ArrayLike<number> }[],
): LabelledImages {
  const first = parts[0]!.data;
  const per = first.height * first.width * first.channels;
  const count = parts.reduce((n, p) => n + p.indices.length, 0);
  const images = new Uint8Array(count * per);
  const labels = new Uint8Array(count);
  let k = 0;
  for (const { data, indices } of parts) {
    for (let i = 0; i < indices.length; i++) {
      const j = indices[i]!;
      images.set(data.images.subarray(j * per, (j + 1) * per), k * per);
      labels[k] = data.labels[j]!;
      k++;
    }
  }
  return {
    images,
    labels,
    count,
    height: first.height,
    width: first.width,
    channels: first.channels,
  };
}

/**
 * The seeded order of the MNIST training images from which {@link finetuneOnClass} takes its
 * first `replay` as the replay; the rest were not trained on (a job calibrates on them).
 */
export function replayOrder(count: number, seed: number): Uint32Array {
  return shuffledIndices(count, seedrandom(`replay-${seed}`));
}

/** Options of {@link finetuneOnClass}. */
export interface ClassFinetuneOptions {
  /** Fewest usable labelled photos (after preprocessing); fewer are refused. Default 50. */
  readonly minPhotos?: number;
  /** Share of the photos (by student) held out for evaluation. Default 0.25. */
  readonly heldOutShare?: number;
  readonly epochs?: number;
  readonly batchSize?: number;
  /** Adam's learning rate: small, the weights start trained. Default 3e-4. */
  readonly learningRate?: number;
  /** MNIST training images mixed in (replay). Default 6000. */
  readonly replay?: number;
  /**
   * How often each class photo is repeated per epoch, so the few class photos weigh against the
   * replay. Default: enough for the class photos to be about a quarter of the samples.
   */
  readonly classRepeat?: number;
  /** Largest allowed drop of MNIST test accuracy, 0..1. Default 0.005 (half a point). */
  readonly maxMnistDrop?: number;
  readonly seed?: number;
  /**
   * The students to hold out, instead of a seeded draw of {@link heldOutShare} (cross-validation
   * by student: see {@link studentFolds}).
   */
  readonly heldOutStudents?: readonly string[];
  readonly onProgress?: (p: TrainProgress) => void;
  /** Stops the fine-tuning between batches (see `trainClassifier`). */
  readonly signal?: AbortSignal;
  /** Goes on from this checkpoint of the same settings (a job resumed after a dead worker). */
  readonly resume?: TrainCheckpoint;
  /** Called after each whole epoch with its checkpoint (a job saves it to resume from). */
  readonly onCheckpoint?: (checkpoint: TrainCheckpoint) => Promise<void>;
}

/** Why {@link classPromotion} decided as it did. */
export type ClassPromotionReason = 'improved' | 'class-not-improved' | 'mnist-dropped';

/**
 * The class rule of promotion: the held-out class accuracy must **improve** (equal is not
 * enough) and the MNIST test accuracy may drop by **at most** `maxMnistDrop` (a drop of exactly
 * `maxMnistDrop` is allowed; a rise always is). Accuracies are 0..1; a 1e-12 tolerance absorbs
 * the rounding of `0.991 - 0.005`.
 * @example
 * classPromotion({ classHeldOut: 0.9, mnistTest: 0.991 }, { classHeldOut: 0.95, mnistTest: 0.986 }, 0.005);
 * // { promote: true, reason: 'improved' }
 */
export function classPromotion(
  before: FinetuneScores,
  after: FinetuneScores,
  maxMnistDrop: number,
): { promote: boolean; reason: ClassPromotionReason } {
  const improved = after.classHeldOut > before.classHeldOut;
  const kept = after.mnistTest >= before.mnistTest - maxMnistDrop - 1e-12;
  return {
    promote: improved && kept,
    reason: !improved ? 'class-not-improved' : !kept ? 'mnist-dropped' : 'improved',
  };
}

/** Accuracy of the model before or after, 0..1. */
export interface FinetuneScores {
  /** On the held-out students' photos (real-photo accuracy). */
  readonly classHeldOut: number;
  /** On the MNIST test set. */
  readonly mnistTest: number;
}

/** What {@link finetuneOnClass} did, for the final message and the version's metadata. */
export interface ClassFinetuneReport {
  readonly photos: number;
  readonly students: number;
  readonly trainPhotos: number;
  readonly heldOutPhotos: number;
  readonly heldOutStudents: readonly string[];
  readonly skipped: ClassDataset['skipped'];
  readonly before: FinetuneScores;
  readonly after: FinetuneScores;
  /** True when the class accuracy improved and MNIST dropped by at most the allowed drop. */
  readonly promote: boolean;
  readonly reason: ClassPromotionReason;
  readonly settings: Required<
    Omit<
      ClassFinetuneOptions,
      'onProgress' | 'heldOutStudents' | 'signal' | 'resume' | 'onCheckpoint'
    >
  >;
  /** Held-out photos the model read right, before and after (for pooling folds). */
  readonly heldOutCorrect: { readonly before: number; readonly after: number };
  /** Images of the MNIST test set the MNIST figures are measured on. */
  readonly mnistTestSamples: number;
  readonly history: readonly EpochRecord[];
  readonly seconds: number;
}

/** Top-1 accuracy of `model` on `indices` of `data` (0..1; 0 for none). */
async function accuracyOn(
  model: tf.LayersModel,
  data: LabelledImages,
  indices: number[],
): Promise<number> {
  if (indices.length === 0) return 0;
  return (await evaluateClassifier(model, data, Uint32Array.from(indices))).acc;
}

/**
 * Fine-tunes `model` in place on the class photos mixed with MNIST replay and reports the
 * scores before and after (see the module comment).
 *
 * Tensors: training and evaluation dispose what they create; the model's weights change.
 * @param model the served model's copy (its weights are changed).
 * @param mnistTrain MNIST training images for the replay, uint8 `[n, 28, 28, 1]`.
 * @param mnistTest the MNIST test set.
 * @throws {UserError} `classdata.not_enough` with `count`, `needed`, `missing` when fewer than
 *   `minPhotos` usable photos remain after preprocessing.
 * @throws {Error} when the photos come from fewer than two students.
 */
export async function finetuneOnClass(
  model: tf.LayersModel,
  classSet: ClassDataset,
  mnistTrain: LabelledImages,
  mnistTest: LabelledImages,
  options: ClassFinetuneOptions = {},
): Promise<ClassFinetuneReport> {
  const t0 = performance.now();
  const n = classSet.data.count;
  const minPhotos = options.minPhotos ?? 50;
  if (n < minPhotos) {
    throw new UserError(
      'classdata.not_enough',
      `${n} usable labelled photos, ${minPhotos} needed`,
      {
        count: n,
        needed: minPhotos,
        missing: minPhotos - n,
      },
    );
  }
  const seed = options.seed ?? 1;
  const heldOutShare = options.heldOutShare ?? 0.25;
  const split = options.heldOutStudents
    ? splitGiven(classSet.students, options.heldOutStudents)
    : splitByStudent(classSet.students, heldOutShare, seed);
  const replay = Math.min(options.replay ?? 6000, mnistTrain.count);
  const classRepeat =
    options.classRepeat ?? Math.max(1, Math.round(replay / 3 / Math.max(1, split.train.length)));
  const settings = {
    minPhotos,
    heldOutShare,
    epochs: options.epochs ?? 4,
    batchSize: options.batchSize ?? 64,
    learningRate: options.learningRate ?? 3e-4,
    replay,
    classRepeat,
    maxMnistDrop: options.maxMnistDrop ?? 0.005,
    seed,
  };

  const before: FinetuneScores = {
    classHeldOut: await accuracyOn(model, classSet.data, split.heldOut),
    mnistTest: (await evaluateClassifier(model, mnistTest)).acc,
  };

  const replayIdx = Array.from(replayOrder(mnistTrain.count, seed).subarray(0, replay));
  const repeated = Array.from({ length: classRepeat }, () => split.train).flat();
  const mixed = gather([
    { data: classSet.data, indices: repeated },
    { data: mnistTrain, indices: replayIdx },
  ]);
  const area = mixed.width * mixed.height;
  const result = await trainClassifier(model, mixed, {
    epochs: settings.epochs,
    batchSize: settings.batchSize,
    validationSplit: 0,
    seed,
    learningRate: () => settings.learningRate,
    trainFiller: (indices, out, r) => {
      augmentDigitBatch(mixed.images, mixed.width, indices, out, r);
      for (let k = 0; k < indices.length; k++) {
        const label = mixed.labels[indices[k] ?? 0] ?? 0;
        addWritingVariant(out.subarray(k * area, (k + 1) * area), mixed.width, label, r);
      }
    },
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.resume ? { resume: options.resume } : {}),
    ...(options.onCheckpoint ? { onCheckpoint: options.onCheckpoint } : {}),
  });
  options.signal?.throwIfAborted();

  const after: FinetuneScores = {
    classHeldOut: await accuracyOn(model, classSet.data, split.heldOut),
    mnistTest: (await evaluateClassifier(model, mnistTest)).acc,
  };
  const decision = classPromotion(before, after, settings.maxMnistDrop);
  return {
    photos: n,
    students: new Set(classSet.students).size,
    trainPhotos: split.train.length,
    heldOutPhotos: split.heldOut.length,
    heldOutStudents: split.heldOutStudents,
    skipped: classSet.skipped,
    before,
    after,
    promote: decision.promote,
    heldOutCorrect: {
      before: Math.round(before.classHeldOut * split.heldOut.length),
      after: Math.round(after.classHeldOut * split.heldOut.length),
    },
    reason: decision.reason,
    mnistTestSamples: mnistTest.count,
    settings,
    history: result.history,
    seconds: (performance.now() - t0) / 1000,
  };
}
