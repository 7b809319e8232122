import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { logger } from '../logger.ts';
import type { OodCriterion } from '../ml/model-meta.ts';
import { loadDataset } from './datasets/load.ts';
import type { LocateOptions } from './datasets/locations.ts';
import {
  datasetThroughPipeline,
  pngsThroughPipeline,
  renderWords,
  type PipelineInputs,
} from './outliers.ts';
import { shuffledIndices, type LabelledImages } from './train.ts';

/** Share of real digits the criterion may flag, set on held-out MNIST validation digits. */
export const FALSE_ALARM_BUDGET = 0.02;
const VALIDATION_SAMPLES = 3_000;
const HELD_OUT_SAMPLES = 1_000;
const WORD_SAMPLES = 300;

/** Top-1 softmax probability of each pipeline output, `[count]`. */
async function topProbabilities(model: tf.LayersModel, p: PipelineInputs): Promise<Float32Array> {
  const top = new Float32Array(p.count);
  for (let i = 0; i < p.count; i += 500) {
    const m = Math.min(500, p.count - i);
    const t = tf.tidy(() =>
      (
        model.predict(
          tf.tensor4d(p.inputs.subarray(i * 784, (i + m) * 784), [m, 28, 28, 1]),
        ) as tf.Tensor
      ).max(-1),
    );
    top.set(await t.data(), i);
    t.dispose();
  }
  return top;
}

/** Share of inputs flagged: refused by the pipeline, or under the threshold. */
function flaggedShare(top: Float32Array, rejected: number, threshold: number): number {
  let flagged = rejected;
  for (const p of top) if (p < threshold) flagged++;
  return flagged / (top.length + rejected);
}

function quantile(values: Float32Array, q: number): number {
  const s = Float32Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * s.length)))] ?? NaN;
}

/** A subset of `data` picked by `indices`, as its own data set. */
function subset(data: LabelledImages, indices: ArrayLike<number>): LabelledImages {
  const per = data.height * data.width * data.channels;
  const images = new Uint8Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k] ?? 0;
    images.set(data.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = data.labels[i] ?? 0;
  }
  return { ...data, images, labels, count: indices.length };
}

/**
 * Calibrates the "not confidently a digit" criterion of a digit classifier (`src/ml/ood.ts`):
 * held-out validation digits are sent through the photo pipeline, as a student's upload would be,
 * and the minimum top-1 probability is set at the quantile that flags
 * {@link FALSE_ALARM_BUDGET} of them. Then it measures, where the data sets are available, the
 * false-alarm rate on MNIST *test* digits and the miss rate (non-digits answered as confident
 * digits) on Fashion-MNIST and CIFAR-10 *test* images and on rendered words, all through the same
 * pipeline; images the pipeline refuses (no ink) count as flagged.
 */
export async function calibrateOod(
  model: tf.LayersModel,
  train: LabelledImages,
  validationIndices: Uint32Array,
  dataDir: string,
  locate: LocateOptions = {},
): Promise<OodCriterion> {
  const pick = shuffledIndices(validationIndices.length, seedrandom('ood-val')).subarray(
    0,
    VALIDATION_SAMPLES,
  );
  const val = subset(
    train,
    Array.from(pick, (k) => validationIndices[k] ?? 0),
  );
  const valP = await datasetThroughPipeline(val, val.count, 'ood-val-order');
  const valTop = await topProbabilities(model, valP);
  const minProbability = quantile(valTop, FALSE_ALARM_BUDGET);
  const calibration: Record<string, number | string> = {
    falseAlarmBudget: FALSE_ALARM_BUDGET,
    validationFalseAlarm: flaggedShare(valTop, valP.rejected, minProbability),
    validationSamples: val.count,
  };
  const measure = async (key: string, p: PipelineInputs, isDigit: boolean): Promise<void> => {
    const flagged = flaggedShare(await topProbabilities(model, p), p.rejected, minProbability);
    calibration[key] = isDigit ? flagged : 1 - flagged;
    calibration[`${key}Samples`] = p.count + p.rejected;
  };
  const heldOut = [
    ['mnist', 'mnistTestFalseAlarm', true],
    ['fashion-mnist', 'fashionMnistMissRate', false],
    ['cifar-10', 'cifar10MissRate', false],
  ] as const;
  for (const [name, key, isDigit] of heldOut) {
    try {
      const data = await loadDataset(name, 'test', dataDir, locate);
      await measure(
        key,
        await datasetThroughPipeline(data, HELD_OUT_SAMPLES, `ood-${name}`),
        isDigit,
      );
    } catch (e) {
      logger.warn({ dataset: name, err: (e as Error).message }, 'calibration data set unavailable');
      calibration[key] = 'n/a';
    }
  }
  await measure(
    'renderedWordsMissRate',
    await pngsThroughPipeline(await renderWords(WORD_SAMPLES, 'ood-words-test')),
    false,
  );
  logger.info({ minProbability, ...calibration }, 'out-of-distribution criterion calibrated');
  return { method: 'max-softmax', minProbability, calibration };
}
