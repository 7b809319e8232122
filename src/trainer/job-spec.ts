/**
 * What a training job is asked to do, as a plain, validated object: the payload a chat command,
 * a job queue or the command line hands to `runTrainingJob` (`run-training-job.ts`). This module
 * loads no TF.js, so a queue can validate payloads without the engine.
 */
import { z } from 'zod';
import { DATASET_NAMES, type DatasetName } from './datasets/types.ts';

/** The learning-rate schedules a job may name (implemented in `recipes.ts`). */
export const SCHEDULE_NAMES = ['cosine', 'step', 'constant'] as const;

/**
 * Float32 weights larger than this many bytes (10 MB, decimal: 10,000,000) are shipped as uint8
 * unless the spec says otherwise: a quarter of the size for the repository and for every bot
 * start, at the cost measured on the test set and recorded in `meta.json`. Of the shipped models
 * only AlexNet (86.5 MB) is over.
 */
export const QUANTIZE_ABOVE_BYTES = 10_000_000;

const share = z.number().min(0).lt(1);

/**
 * The zod schema of {@link TrainingJobSpec}. Absent settings take the model's recipe defaults
 * (`RECIPES[model].defaults`) when the job runs; `parse` fills only the flags below that have a
 * fixed default.
 *
 * @example
 * const spec = trainingJobSpecSchema.parse({
 *   model: 'lenet-mnist', dataDir: 'data', outputDir: 'models/lenet-mnist', epochs: 1,
 * });
 */
export const trainingJobSpecSchema = z
  .object({
    /** Id of the model to train: a key of `RECIPES` (e.g. `lenet-mnist`). */
    model: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a model id such as lenet-mnist'),
    /** Data set to train on; default the recipe's. Must have the recipe's image shape. */
    dataset: z.enum(DATASET_NAMES).optional(),
    /** The data folder (`DATA_DIR`): `<dataDir>/<dataset>/...`. */
    dataDir: z.string().min(1),
    /** A read-only folder laid out like `dataDir`, searched after it (`CNN_SHARED_DATA`). */
    sharedDataDir: z.string().min(1).optional(),
    /** Epochs in all (a resumed run counts the epochs already done). */
    epochs: z.number().int().positive().optional(),
    /** Mini-batch size, images. */
    batchSize: z.number().int().positive().optional(),
    /** Base learning rate of Adam. */
    learningRate: z.number().positive().optional(),
    /** Learning-rate schedule over the epochs. */
    schedule: z.enum(SCHEDULE_NAMES).optional(),
    /** Early-stopping patience in epochs; 0: off. */
    patience: z.number().int().min(0).optional(),
    /** Seed of the weights' initialisation, the validation split, the order and augmentation. */
    seed: z.number().int().default(42),
    /** Share of the training set held out for validation, [0, 1). */
    validationSplit: share.optional(),
    /**
     * Worker threads for data-parallel training on the wasm backend, at most `batchSize`.
     * Absent: every core but no shard under 32 images, or the resumed checkpoint's count.
     */
    workers: z.number().int().positive().optional(),
    /** Augment the training images when the recipe has an augmentation. */
    augment: z.boolean().default(true),
    /** Train with Outlier Exposure when the recipe has an outlier set. */
    outliers: z.boolean().default(true),
    /** Calibrate the "not one of the classes" criterion when the recipe has one. */
    calibrate: z.boolean().default(true),
    /** The folder the trained model is written to (model.json, weights, meta.json, history). */
    outputDir: z.string().min(1),
    /** Folder of this run's per-epoch checkpoint; absent: no checkpoints, no resume. */
    checkpointDir: z.string().min(1).optional(),
    /** Go on from a checkpoint of the same settings in `checkpointDir`. */
    resume: z.boolean().default(true),
    /**
     * A saved model's folder (`model.json` and weights, as this job writes them) whose weights
     * start the run instead of a fresh initialisation: fine-tuning, or a warm restart of a longer
     * schedule (Loshchilov & Hutter 2017). It must be of the model's architecture. The optimizer
     * starts afresh; a checkpoint of the same settings and starting weights still resumes.
     */
    initFrom: z.string().min(1).optional(),
    /** Replace a model in `outputDir` even when its test accuracy is higher. */
    force: z.boolean().default(false),
    /** Ship uint8 weights when the float32 ones exceed this many bytes; `null`: never. */
    quantizeAboveBytes: z.number().int().min(0).nullable().default(QUANTIZE_ABOVE_BYTES),
    /**
     * Extra labelled photos added to the training set, in the ImageFolder layout
     * (`<dir>/<class name>/<image>`, class names as the data set's), each run through the
     * model's photo pipeline as an upload would be; `repeat` times each (oversampling).
     */
    extraData: z
      .object({ dir: z.string().min(1), repeat: z.number().int().positive().default(1) })
      .optional(),
  })
  .strict()
  .refine((s) => s.workers === undefined || s.batchSize === undefined || s.workers <= s.batchSize, {
    message: 'workers cannot exceed the batch size (at most one worker per image)',
    path: ['workers'],
  });

/** A training job as given (before defaults): see {@link trainingJobSpecSchema}. */
export type TrainingJobSpecInput = z.input<typeof trainingJobSpecSchema>;

/** A validated training job (flags with fixed defaults filled in). */
export type TrainingJobSpec = z.output<typeof trainingJobSpecSchema>;

/**
 * The settings that decide a run's numbers, every default resolved: two runs with equal
 * settings train the same weights, so a checkpoint is resumed only by a run of equal settings.
 */
export interface TrainingSettings {
  readonly model: string;
  readonly dataset: DatasetName;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly schedule: (typeof SCHEDULE_NAMES)[number];
  readonly patience: number;
  readonly seed: number;
  readonly validationSplit: number;
  readonly workers: number;
  /** Whether batches are augmented (false also when the recipe has no augmentation). */
  readonly augment: boolean;
  /** Whether Outlier Exposure is used (false also when the recipe has no outlier set). */
  readonly outliers: boolean;
  /** SHA-256 (hex) of the extra labelled data as trained on, with its repeat count; absent: none. */
  readonly extraData?: string;
  /** SHA-256 (hex) of the starting weights ({@link TrainingJobSpec.initFrom}); absent: fresh ones. */
  readonly initFrom?: string;
}

const settingsSchema = z.object({
  model: z.string(),
  dataset: z.enum(DATASET_NAMES),
  epochs: z.number(),
  batchSize: z.number(),
  learningRate: z.number(),
  schedule: z.enum(SCHEDULE_NAMES),
  patience: z.number(),
  seed: z.number(),
  validationSplit: z.number(),
  workers: z.number().int().positive(),
  augment: z.boolean(),
  outliers: z.boolean(),
  extraData: z.string().optional(),
  initFrom: z.string().optional(),
});

/**
 * The checkpoint fingerprint of a run: its settings as JSON, keys in a fixed order, so that equal
 * settings give equal strings.
 */
export function settingsFingerprint(s: TrainingSettings): string {
  return JSON.stringify({
    model: s.model,
    dataset: s.dataset,
    epochs: s.epochs,
    batchSize: s.batchSize,
    learningRate: s.learningRate,
    schedule: s.schedule,
    patience: s.patience,
    seed: s.seed,
    validationSplit: s.validationSplit,
    workers: s.workers,
    augment: s.augment,
    outliers: s.outliers,
    ...(s.extraData !== undefined ? { extraData: s.extraData } : {}),
    ...(s.initFrom !== undefined ? { initFrom: s.initFrom } : {}),
  });
}

/**
 * The settings of a fingerprint written by {@link settingsFingerprint}, or `undefined` for one
 * of another form (a checkpoint of an older version, whose fingerprint was its command line).
 */
export function parseSettingsFingerprint(fingerprint: string): TrainingSettings | undefined {
  try {
    const parsed = settingsSchema.safeParse(JSON.parse(fingerprint));
    if (!parsed.success) return undefined;
    const { extraData, initFrom, ...rest } = parsed.data;
    return {
      ...rest,
      ...(extraData === undefined ? {} : { extraData }),
      ...(initFrom === undefined ? {} : { initFrom }),
    };
  } catch {
    return undefined;
  }
}

/**
 * What differs between the settings of a checkpoint found (`theirs`) and those of this run
 * (`ours`), in words, for the message that explains why the checkpoint is not resumed: the
 * starting weights by digest (`<sha256 0123456789ab>`, or "fresh"), any other setting as
 * `name X (now Y)`. Empty when they are equal.
 */
export function settingsDifference(theirs: TrainingSettings, ours: TrainingSettings): string {
  const digest = (d: string | undefined): string =>
    d === undefined ? 'fresh weights' : `the weights <sha256 ${d.slice(0, 12)}>`;
  const keys = new Set([
    ...Object.keys(theirs),
    ...Object.keys(ours),
  ] as (keyof TrainingSettings)[]);
  const parts: string[] = [];
  for (const key of keys) {
    const [a, b] = [theirs[key], ours[key]];
    if (a === b) continue;
    if (key === 'initFrom') {
      parts.push(
        `it started from ${digest(a as string | undefined)}, this run from ${digest(b as string | undefined)}`,
      );
    } else if (key === 'extraData') {
      parts.push(`other extra data`);
    } else {
      parts.push(
        `${key} ${a === undefined ? 'unset' : String(a)} (now ${b === undefined ? 'unset' : String(b)})`,
      );
    }
  }
  return parts.join('; ');
}

/**
 * The `bin/cnn-classroom train` command line that trains with `s` (recorded in `meta.json`
 * as `training.command`, in the form earlier versions recorded it). Folders are left out; a run
 * with extra data or starting weights names them by digest only, as the command line cannot give
 * them by content.
 */
export function trainCommand(
  s: TrainingSettings,
  recipe: { readonly dataset: DatasetName; readonly augments: boolean; readonly outliers: boolean },
): string {
  return [
    `bin/cnn-classroom train ${s.model} --epochs ${s.epochs} --batch ${s.batchSize} --lr ${s.learningRate}`,
    `--schedule ${s.schedule} --patience ${s.patience} --seed ${s.seed}`,
    `--validation-split ${s.validationSplit} --workers ${s.workers}`,
    s.dataset === recipe.dataset ? '' : `--dataset ${s.dataset}`,
    s.augment || !recipe.augments ? '' : '--no-augment',
    s.outliers || !recipe.outliers ? '' : '--no-outliers',
    s.extraData === undefined ? '' : `--extra-data <sha256 ${s.extraData.slice(0, 12)}>`,
    s.initFrom === undefined ? '' : `--init-from <sha256 ${s.initFrom.slice(0, 12)}>`,
  ]
    .filter(Boolean)
    .join(' ');
}
