import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { logger } from '../logger.ts';
import type { OodCriterion } from '../ml/model-meta.ts';
import { buildFeatureModel, fitGaussian, mahalanobis, type GaussianFit } from '../ml/ood.ts';
import { loadDataset } from './datasets/load.ts';
import { datasetThroughPipeline, pngsThroughPipeline, renderWords } from './outliers.ts';
import { shuffledIndices, type LabelledImages } from './train.ts';

/** Target share of real digits that the criterion may flag, on held-out MNIST. */
const FALSE_ALARM_BUDGET = 0.01;
const FIT_SAMPLES = 20_000;
const NON_DIGIT_SAMPLES = 1_000;

/** Features and top probability of each input, `[n * dim]` and `[n]`. */
async function featuresOf(
  fm: tf.LayersModel,
  inputs: Float32Array,
  n: number,
  shape: readonly [number, number, number],
): Promise<{ features: Float32Array; top: Float32Array; dim: number }> {
  const per = shape[0] * shape[1] * shape[2];
  const parts: Float32Array[] = [];
  const top = new Float32Array(n);
  let dim = 0;
  for (let i = 0; i < n; i += 500) {
    const m = Math.min(500, n - i);
    const [f, p] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
      const x = tf.tensor4d(inputs.subarray(i * per, (i + m) * per), [m, ...shape]);
      const [feat, probs] = fm.predict(x) as tf.Tensor[];
      return [feat!, probs!.max(-1)];
    });
    dim = f.shape[1] ?? 0;
    parts.push(Float32Array.from(await f.data()));
    top.set(await p.data(), i);
    tf.dispose([f, p]);
  }
  const features = new Float32Array(n * dim);
  parts.reduce((off, a) => (features.set(a, off), off + a.length), 0);
  return { features, top, dim };
}

function toFloat(data: LabelledImages, idx: ArrayLike<number>): Float32Array {
  const per = data.height * data.width * data.channels;
  const out = new Float32Array(idx.length * per);
  for (let k = 0; k < idx.length; k++) {
    const base = (idx[k] ?? 0) * per;
    for (let j = 0; j < per; j++) out[k * per + j] = (data.images[base + j] ?? 0) / 255;
  }
  return out;
}

function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * (s.length - 1))))] ?? NaN;
}

/**
 * Calibrates the "not confidently a digit" criterion of a digit classifier (`src/ml/ood.ts`):
 * fits class-conditional Gaussians with a tied covariance to the penultimate-layer features of
 * training images (Lee et al. 2018), then sets the Mahalanobis-distance threshold and the
 * minimum top-1 softmax probability (Hendrycks & Gimpel 2017) each at the quantile that flags
 * {@link FALSE_ALARM_BUDGET} of the held-out validation digits. Measures the false-alarm rate on
 * MNIST test images sent through the photo pipeline and the miss rate (non-digits judged
 * confident) on Fashion-MNIST and CIFAR-10 test images sent through the same pipeline, where
 * those data sets are available.
 */
export async function calibrateOod(
  model: tf.LayersModel,
  featureLayer: string,
  train: LabelledImages,
  validationIndices: Uint32Array,
  dataDir: string,
): Promise<OodCriterion> {
  const fm = buildFeatureModel(model, featureLayer);
  const shape = [train.height, train.width, train.channels] as const;
  const valSet = new Set(validationIndices);
  const fitIdx = Array.from(shuffledIndices(train.count, seedrandom('ood-fit')))
    .filter((i) => !valSet.has(i))
    .slice(0, FIT_SAMPLES);
  const fitF = await featuresOf(fm, toFloat(train, fitIdx), fitIdx.length, shape);
  const fit: GaussianFit = fitGaussian(
    fitF.features,
    fitIdx.map((i) => train.labels[i] ?? 0),
    fitF.dim,
    10,
  );

  const val = await featuresOf(
    fm,
    toFloat(train, validationIndices),
    validationIndices.length,
    shape,
  );
  const distances = (f: { features: Float32Array; dim: number }, n: number): Float64Array => {
    const d = new Float64Array(n);
    for (let i = 0; i < n; i++)
      d[i] = mahalanobis(f.features.subarray(i * f.dim, (i + 1) * f.dim), fit);
    return d;
  };
  const valD = distances(val, validationIndices.length);
  const maxDistance = quantile(valD, 1 - FALSE_ALARM_BUDGET);
  const minProbability = quantile(val.top, FALSE_ALARM_BUDGET);
  const flaggedShare = (
    f: { features: Float32Array; top: Float32Array; dim: number },
    n: number,
    rejected = 0,
  ): number => {
    const d = distances(f, n);
    let flagged = rejected;
    for (let i = 0; i < n; i++)
      if ((f.top[i] ?? 0) < minProbability || (d[i] ?? 0) > maxDistance) flagged++;
    return flagged / (n + rejected);
  };
  const calibration: Record<string, number | string> = {
    falseAlarmBudget: FALSE_ALARM_BUDGET,
    validationFalseAlarm: flaggedShare(val, validationIndices.length),
    validationSamples: validationIndices.length,
  };
  const measure = async (
    name: 'mnist' | 'fashion-mnist' | 'cifar-10',
    key: string,
    isDigit: boolean,
  ): Promise<void> => {
    try {
      const data = await loadDataset(name, 'test', dataDir);
      const p = await datasetThroughPipeline(data, NON_DIGIT_SAMPLES, `ood-${name}`);
      const f = await featuresOf(fm, p.inputs, p.count, [28, 28, 1]);
      const flagged = flaggedShare(f, p.count, p.rejected);
      calibration[key] = isDigit ? flagged : 1 - flagged;
      calibration[`${key}Samples`] = p.count + p.rejected;
    } catch (e) {
      logger.warn({ dataset: name, err: (e as Error).message }, 'calibration data set unavailable');
      calibration[key] = 'n/a';
    }
  };
  await measure('mnist', 'mnistTestFalseAlarmThroughPipeline', true);
  await measure('fashion-mnist', 'fashionMnistMissRate', false);
  await measure('cifar-10', 'cifar10MissRate', false);
  const words = await pngsThroughPipeline(await renderWords(300, 'ood-words-test'));
  const wf = await featuresOf(fm, words.inputs, words.count, [28, 28, 1]);
  calibration.renderedWordsMissRate = 1 - flaggedShare(wf, words.count, words.rejected);
  calibration.renderedWordsSamples = words.count + words.rejected;
  // The feature model shares the classifier's layers: do not dispose it (that would free them).
  logger.info(
    { minProbability, maxDistance, ...calibration },
    'out-of-distribution criterion calibrated',
  );
  return {
    method: 'softmax+mahalanobis',
    featureLayer,
    minProbability,
    maxDistance,
    means: fit.means,
    precision: fit.precision,
    calibration,
  };
}
