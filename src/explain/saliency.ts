/**
 * Saliency maps (Simonyan et al. 2014, Sec. 3.1): the gradient of the pre-softmax class score
 * with respect to the input pixels, its absolute value maximised over the colour channels, so
 * that bright pixels are the ones whose change would change the score most. SmoothGrad
 * (Smilkov et al. 2017) averages the gradients over noisy copies of the image, which removes
 * most of the speckle.
 */
import * as tf from '@tensorflow/tfjs';
import { buildForward } from './forward.ts';
import type { Container } from './graph.ts';
import { normalizeMap, type NormalizedMap } from './heat-map.ts';
import type { ScoreKind } from './logits.ts';
import { resolveClassIndex, TOP_PREDICTION, type ClassTarget } from './targets.ts';

/** SmoothGrad's settings. */
export interface SmoothGradOptions {
  /** Noisy copies averaged (the paper: 50; 20 is close). */
  readonly samples: number;
  /** Noise standard deviation as a share of the input's value range (the paper: 0.1-0.2). */
  readonly noise: number;
  readonly seed?: number;
}

/** Options of {@link computeSaliency}. */
export interface SaliencyOptions {
  readonly target?: ClassTarget;
  readonly classNames?: readonly string[];
  /** Averages gradients over noisy copies (SmoothGrad) when given. */
  readonly smoothGrad?: SmoothGradOptions;
}

/** A saliency map at the model input's resolution. */
export interface SaliencyResult {
  readonly map: NormalizedMap;
  readonly classIndex: number;
  readonly probabilities: Float32Array;
  readonly scoreKind: ScoreKind;
}

/** Default SmoothGrad settings: 20 copies, noise 15% of the value range. */
export const SMOOTH_GRAD_DEFAULTS: SmoothGradOptions = { samples: 20, noise: 0.15 };

const CHUNK = 8;

/**
 * The saliency map of one image.
 *
 * @param x the model input, `[1, height, width, channels]`.
 * Tensors: creates and disposes its own.
 * @throws {UserError} `argument.invalid` for an unknown class.
 * @example
 * const { map } = await computeSaliency(model, x, { smoothGrad: SMOOTH_GRAD_DEFAULTS });
 * // map.width === 224, map.height === 224 for MobileNet
 */
export async function computeSaliency(
  model: Container,
  x: tf.Tensor4D,
  options: SaliencyOptions = {},
): Promise<SaliencyResult> {
  const forward = buildForward(model);
  const [, height = 0, width = 0] = x.shape;
  let classIndex = 0;
  const [saliency, probs] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
    const scores = forward.run(x);
    classIndex = resolveClassIndex(
      options.target ?? TOP_PREDICTION,
      options.classNames ?? [],
      scores.dataSync(),
    );
    const c = classIndex;
    // The sum over a batch of independent examples: each example's gradient is its own.
    const score = (batch: tf.Tensor): tf.Scalar =>
      forward
        .run(batch as tf.Tensor4D)
        .slice([0, c], [-1, 1])
        .sum();
    const gradOf = tf.grad(score);
    let grads: tf.Tensor4D;
    const sg = options.smoothGrad;
    if (sg && sg.samples > 0) {
      const sigma = sg.noise * (x.max().dataSync()[0]! - x.min().dataSync()[0]!);
      let sum: tf.Tensor4D = tf.zerosLike(x);
      for (let done = 0; done < sg.samples; done += CHUNK) {
        const n = Math.min(CHUNK, sg.samples - done);
        const noisy = tf.add<tf.Tensor4D>(
          tf.tile(x, [n, 1, 1, 1]),
          tf.randomNormal([n, ...x.shape.slice(1)], 0, sigma, 'float32', (sg.seed ?? 1) + done),
        );
        sum = tf.add<tf.Tensor4D>(sum, gradOf(noisy).sum(0, true));
      }
      grads = tf.div<tf.Tensor4D>(sum, sg.samples);
    } else grads = gradOf(x) as tf.Tensor4D;
    return [tf.max(tf.abs(grads), -1).squeeze([0]), tf.softmax(scores).squeeze([0])];
  });
  const [mapData, probData] = await Promise.all([saliency.data(), probs.data()]);
  tf.dispose([saliency, probs]);
  return {
    map: normalizeMap(clipAtPercentile(mapData, 0.99), width, height),
    classIndex,
    probabilities: probData as Float32Array,
    scoreKind: forward.scores.kind,
  };
}

/**
 * Caps values at a percentile: a few extreme gradients would otherwise leave the rest of a
 * saliency map black (the PAIR saliency library's visualisation clips at the 99th percentile).
 */
export function clipAtPercentile(values: ArrayLike<number>, q: number): Float32Array {
  const out = Float32Array.from(values, (v) => (Number.isFinite(v) ? v : 0));
  const sorted = Float32Array.from(out).sort();
  const cap = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  if (cap > 0) for (let i = 0; i < out.length; i++) out[i] = Math.min(out[i] ?? 0, cap);
  return out;
}
