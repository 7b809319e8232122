import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * How a photo becomes the model's input:
 * - `mnist-digit`: the MNIST normalisation of a photographed digit (`src/ml/preprocess/digit.ts`),
 *   `[28, 28, 1]`, [0, 1], ink bright;
 * - `rgb-unit`: RGB resized to the input size, scaled to [0, 1];
 * - `rgb-signed`: RGB resized to the input size, scaled to [-1, 1] (x / 127.5 - 1, MobileNet);
 * - `fashion-gray`: grayscale, trimmed to the garment and resized keeping its aspect ratio, [0, 1],
 *   inverted when the garment is darker than the background, so the garment is bright on dark as
 *   in Fashion-MNIST (`src/ml/preprocess/fashion.ts`);
 * - `caffe`: resized, channels in BGR order minus the ImageNet means, not scaled (Keras
 *   `preprocess_input` mode 'caffe': VGG16, VGG19, ResNet50 converted from Keras).
 */
export const PREPROCESS = [
  'mnist-digit',
  'rgb-unit',
  'rgb-signed',
  'fashion-gray',
  'caffe',
] as const;

/** The "not confidently one of the classes" criterion stored with a model; see `src/ml/ood.ts`. */
export const oodSchema = z.object({
  method: z.literal('max-softmax'),
  /** Lowest top-1 softmax probability of an answer reported as confident. */
  minProbability: z.number().min(0).max(1),
  /** Figures measured when calibrating (rates 0..1 and sample counts), for the README and `/models`. */
  calibration: z.record(z.string(), z.union([z.number(), z.string()])),
});

/**
 * How the shipped weights are stored when quantized (`src/ml/quantize.ts`): `testAccuracy` is
 * then the accuracy of these weights, and the float32 figures are kept beside it.
 */
export const quantizationSchema = z.object({
  dtype: z.enum(['uint8', 'float16']),
  /** Accuracy on the same test set before quantizing, 0..1. */
  float32TestAccuracy: z.number().min(0).max(1).optional(),
  /** Size of the weights as float32, bytes. */
  float32Bytes: z.number().int(),
  /** Size of the weight file shipped, bytes. */
  bytes: z.number().int(),
});

export const modelMetaSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  architecture: z.string(),
  dataset: z.string(),
  inputShape: z.tuple([z.number().int(), z.number().int(), z.number().int()]),
  preprocess: z.enum(PREPROCESS),
  classNames: z.array(z.string()).min(2),
  /**
   * Accuracy on the full test set, 0..1, with the number of test samples; of the weights as
   * shipped (quantized ones when `quantization` is set).
   */
  testAccuracy: z.number().min(0).max(1).optional(),
  testSamples: z.number().int().optional(),
  training: z
    .object({
      /** Epochs run (fewer than asked when early stopping ended the run). */
      epochs: z.number().int(),
      /** Epoch whose weights were kept (the best by validation accuracy under early stopping). */
      keptEpoch: z.number().int().optional(),
      batchSize: z.number().int(),
      learningRate: z.number().optional(),
      schedule: z.string().optional(),
      augmentation: z.boolean().optional(),
      seconds: z.number(),
      backend: z.string(),
      date: z.string(),
      seed: z.number().int(),
      validationSplit: z.number().min(0).max(1).optional(),
      samplesPerSec: z.number().optional(),
      /** Worker threads of data-parallel training (1: the main thread alone). */
      workers: z.number().int().positive().optional(),
      command: z.string().optional(),
      /**
       * The saved model whose weights started this run (`train --init-from`), as its own
       * `meta.json` described it; absent: a fresh initialisation.
       */
      initFrom: z
        .object({
          /** SHA-256 (hex) of the starting weights as float32, in `model.weights` order. */
          sha256: z.string(),
          testAccuracy: z.number().min(0).max(1).optional(),
          epochs: z.number().int().optional(),
          /** Its training wall time, seconds. */
          seconds: z.number().optional(),
          command: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
  ood: oodSchema.optional(),
  /** Present when the weights are stored quantized. */
  quantization: quantizationSchema.optional(),
});

/** The contents of a model folder's `meta.json`. */
export type ModelMeta = z.infer<typeof modelMetaSchema>;
export type OodCriterion = z.infer<typeof oodSchema>;
export type ModelQuantization = z.infer<typeof quantizationSchema>;

/** File name of the metadata beside `model.json`. */
export const META_FILE = 'meta.json';

/**
 * Reads and validates `<dir>/meta.json`.
 * @throws {Error} naming the file when it is missing or invalid.
 */
export async function readModelMeta(dir: string): Promise<ModelMeta> {
  const file = path.join(dir, META_FILE);
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const parsed = modelMetaSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) {
    throw new Error(
      `invalid ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
