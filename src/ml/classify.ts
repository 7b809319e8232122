import * as tf from '@tensorflow/tfjs';
import type { LoadedModel } from './registry.ts';
import { judgeConfidence, type OodReason } from './ood.ts';
import { preprocessForModel, type ImageLimits, type ModelInput } from './preprocess/for-model.ts';

/** One class and its probability. */
export interface ClassProbability {
  readonly classIndex: number;
  readonly label: string;
  readonly probability: number;
}

/** The answer to "what is in this image?". */
export interface Classification {
  readonly model: string;
  readonly classIndex: number;
  readonly label: string;
  /** Softmax probability of the predicted class, 0..1. */
  readonly confidence: number;
  /** The `k` most probable classes, most probable first. */
  readonly topK: ClassProbability[];
  /** Every class's probability, in class order. */
  readonly probabilities: number[];
  /**
   * False when the image is not confidently one of the classes (for digits: "not a digit"):
   * the top-1 probability is under the model's calibrated threshold (0.5 when it has none).
   */
  readonly confident: boolean;
  readonly reasons: OodReason[];
  /** The tensor the model saw, for display. */
  readonly input: ModelInput;
  /** Inference time alone, milliseconds. */
  readonly inferenceMs: number;
}

/** For models without a calibrated criterion: an answer under 50% is not confident. */
const DEFAULT_CRITERION = { method: 'max-softmax', minProbability: 0.5, calibration: {} } as const;

/**
 * Classifies a preprocessed input.
 *
 * Tensors: creates and disposes its own; `tf.memory().numTensors` is unchanged afterwards.
 * @param k how many classes `topK` holds (clamped to the number of classes).
 */
export async function classifyInput(
  loaded: LoadedModel,
  input: ModelInput,
  k = 5,
): Promise<Classification> {
  const { meta, model } = loaded;
  const t0 = performance.now();
  const out = tf.tidy(
    () =>
      model.predict(
        tf.tensor4d(input.data, [1, input.height, input.width, input.channels]),
      ) as tf.Tensor,
  );
  const probs = Array.from(await out.data(), Number);
  out.dispose();
  const inferenceMs = performance.now() - t0;
  const order = probs.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]);
  const name = (i: number): string => meta.classNames[i] ?? String(i);
  const topK = order
    .slice(0, Math.max(1, Math.min(k, probs.length)))
    .map(([p, i]) => ({ classIndex: i, label: name(i), probability: p }));
  const best = topK[0]!;
  const { confident, reasons } = judgeConfidence(meta.ood ?? DEFAULT_CRITERION, best.probability);
  return {
    model: meta.id,
    classIndex: best.classIndex,
    label: best.label,
    confidence: best.probability,
    topK,
    probabilities: probs,
    confident,
    reasons,
    input,
    inferenceMs,
  };
}

/**
 * Decodes, preprocesses and classifies an uploaded image.
 * @throws {UserError} for images that cannot be read (see `src/imaging/decode.ts`).
 */
export async function classifyImage(
  loaded: LoadedModel,
  bytes: Uint8Array,
  limits: ImageLimits,
  k = 5,
): Promise<Classification> {
  const input = await preprocessForModel(loaded.meta, bytes, limits);
  return classifyInput(loaded, input, k);
}
