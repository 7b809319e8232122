/**
 * From an uploaded image to an explanation: preprocessing as for classification, the chosen
 * method's map, the map at the image's own size, where its heat is, and the faithfulness check.
 * Used by the CLI, the chat commands, the bench and the gallery script alike.
 */
import * as tf from '@tensorflow/tfjs';
import { decodeImage, type ImageLimits } from '../imaging/decode.ts';
import type { RgbImage } from '../imaging/overlay.ts';
import type { ModelInput } from '../ml/preprocess/for-model.ts';
import {
  inputSpansImage,
  inputToDisplayBytes,
  preprocessForModel,
} from '../ml/preprocess/for-model.ts';
import type { ModelMeta } from '../ml/model-meta.ts';
import type { LoadedModel } from '../ml/registry.ts';
import { computeCam, type ChannelWeighting } from './cam-base.ts';
import { measureFaithfulness, type Faithfulness } from './faithfulness.ts';
import { buildForward } from './forward.ts';
import { gradCamPlusPlusWeights } from './grad-cam-plus-plus.ts';
import { gradCamWeights } from './grad-cam.ts';
import { resizeMap, type HeatMap, type MapNote, type NormalizedMap } from './heat-map.ts';
import type { ScoreKind } from './logits.ts';
import { describeRegions, type Box } from './regions.ts';
import { computeSaliency, type SaliencyResult, type SmoothGradOptions } from './saliency.ts';
import { shortLabel, TOP_PREDICTION, type ClassTarget } from './targets.ts';

/** The explanation methods. */
export const EXPLAIN_METHODS = ['gradcam', 'gradcam++', 'saliency'] as const;

/** One of {@link EXPLAIN_METHODS}. */
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

/** The channel weighting of each class activation map method: the only step they differ in. */
export const CAM_WEIGHTINGS: Readonly<
  Record<Exclude<ExplainMethod, 'saliency'>, ChannelWeighting>
> = { gradcam: gradCamWeights, 'gradcam++': gradCamPlusPlusWeights };

export type { RgbImage } from '../imaging/overlay.ts';

/** Options of {@link explainImage}. */
export interface ExplainOptions {
  readonly method: ExplainMethod;
  /** Layer for the CAM methods (default: the last spatial one). */
  readonly layer?: string;
  /** Class to explain (default: the top prediction). */
  readonly target?: ClassTarget;
  /** Saliency only: SmoothGrad instead of the plain gradient. */
  readonly smoothGrad?: SmoothGradOptions;
  /** Runs the blur check (default true; it costs 7 more inferences). */
  readonly faithfulness?: boolean;
  readonly seed?: number;
}

/** An explained prediction, ready to be drawn and put into words. */
export interface Explanation {
  readonly model: string;
  /** How the model's input was made from the upload (its `meta.preprocess`). */
  readonly preprocess: ModelMeta['preprocess'];
  readonly method: ExplainMethod;
  /** The layer of a CAM method. */
  readonly layer?: string;
  readonly scoreKind: ScoreKind;
  /** The explained class: index, short label, full name, probability. */
  readonly classIndex: number;
  readonly label: string;
  readonly className: string;
  readonly confidence: number;
  /** The model's top prediction (the same class unless another was asked for). */
  readonly predicted: {
    readonly classIndex: number;
    readonly label: string;
    readonly confidence: number;
  };
  /** The picture the map is drawn over (the photo, or a digit or garment model's input). */
  readonly image: RgbImage;
  /** The map at {@link image}'s size. */
  readonly map: HeatMap;
  /** The map at the method's own resolution (the layer's, or the model input's). */
  readonly rawMap: NormalizedMap;
  /**
   * What the positions refer to: `image`, the uploaded image (upright); `model-input`, the
   * model's input (digit and garment models, whose input is a normalized crop of the photo; see
   * `inputSpansImage`).
   */
  readonly space: 'image' | 'model-input';
  /**
   * Size of what {@link space} names, pixels: the positions below refer to it. For a photo over
   * 1,024 pixels on a side it is larger than {@link image} and {@link map}, which are scaled to
   * fit 1,024 (multiply a map position by `original.width / map.width` to get a photo pixel).
   */
  readonly original: { readonly width: number; readonly height: number };
  /** The hottest point, in {@link original} pixels; absent when the map is all zero. */
  readonly peak?: { readonly x: number; readonly y: number };
  /** Share of the heat in each ninth (3x3, row-major from the top left). */
  readonly thirds: readonly number[];
  /** The main hot area, in {@link original} pixels, with its share of the area and of the heat. */
  readonly blob?: Box & { readonly area: number; readonly mass: number };
  readonly faithfulness?: Faithfulness;
  /** Set when the map is all zero, saying why. */
  readonly note?: MapNote;
  /** Milliseconds: the map alone, and everything. */
  readonly ms: { readonly map: number; readonly total: number };
}

/** Longest side of the photo kept for display. */
const DISPLAY_MAX_SIDE = 1024;

/**
 * Explains a model's answer on an uploaded image.
 * @throws {UserError} the decoder's ids; `argument.invalid` for an unknown layer or class.
 * @example
 * const e = await explainImage(loaded, bytes, limits, { method: 'gradcam' });
 * e.label; e.peak; e.faithfulness?.hotDrop;
 */
export async function explainImage(
  loaded: LoadedModel,
  bytes: Uint8Array,
  limits: ImageLimits,
  options: ExplainOptions,
): Promise<Explanation> {
  const t0 = performance.now();
  const input = await preprocessForModel(loaded.meta, bytes, limits);
  if (!inputSpansImage(loaded.meta.preprocess)) {
    return explainInput(loaded, input, options, undefined, t0);
  }
  const decoded = await decodeImage(bytes, limits, { maxSide: DISPLAY_MAX_SIDE });
  const { info } = decoded;
  const turned = info.orientation >= 5;
  return explainInput(
    loaded,
    input,
    options,
    {
      image: { data: decoded.data, width: decoded.width, height: decoded.height },
      original: {
        width: turned ? info.height : info.width,
        height: turned ? info.width : info.height,
      },
    },
    t0,
  );
}

/**
 * Explains a model's answer on an input already preprocessed.
 * @param view the picture to draw over and the size positions are reported in; default the
 *   model input itself.
 * Tensors: creates and disposes its own.
 */
export async function explainInput(
  loaded: LoadedModel,
  input: ModelInput,
  options: ExplainOptions,
  view?: { readonly image: RgbImage; readonly original: { width: number; height: number } },
  startedAt = performance.now(),
): Promise<Explanation> {
  const { model, meta } = loaded;
  const x = tf.tensor4d(input.data, [1, input.height, input.width, input.channels]);
  try {
    const t0 = performance.now();
    const common = { target: options.target ?? TOP_PREDICTION, classNames: meta.classNames };
    const r: { layer?: string } & Omit<SaliencyResult, 'layer'> =
      options.method === 'saliency'
        ? await computeSaliency(model, x, {
            ...common,
            ...(options.smoothGrad ? { smoothGrad: options.smoothGrad } : {}),
          })
        : await computeCam(model, x, CAM_WEIGHTINGS[options.method], {
            ...common,
            ...(options.layer === undefined ? {} : { layer: options.layer }),
          });
    const mapMs = performance.now() - t0;
    const image = view?.image ?? inputAsRgb(input);
    const original = view?.original ?? { width: input.width, height: input.height };
    const inputMap = resizeMap(r.map, input.width, input.height);
    const regions = describeRegions(inputMap);
    const sx = original.width / input.width;
    const sy = original.height / input.height;
    const c = r.classIndex;
    const top = argMaxOf(r.probabilities);
    const faithfulness =
      options.faithfulness === false || r.map.note !== undefined
        ? undefined
        : await measureFaithfulness(input, inputMap, classProbabilities(loaded, input, c), {
            seed: options.seed ?? 1,
          });
    const name = (i: number): string => meta.classNames[i] ?? String(i);
    return {
      model: meta.id,
      preprocess: meta.preprocess,
      method: options.method,
      ...(r.layer === undefined ? {} : { layer: r.layer }),
      scoreKind: r.scoreKind,
      classIndex: c,
      label: shortLabel(name(c)),
      className: name(c),
      confidence: r.probabilities[c] ?? 0,
      predicted: {
        classIndex: top,
        label: shortLabel(name(top)),
        confidence: r.probabilities[top] ?? 0,
      },
      image,
      map: resizeMap(r.map, image.width, image.height),
      rawMap: r.map,
      space: view ? 'image' : 'model-input',
      original,
      ...(regions.peak
        ? {
            peak: {
              x: Math.min(original.width - 1, Math.floor((regions.peak.x + 0.5) * sx)),
              y: Math.min(original.height - 1, Math.floor((regions.peak.y + 0.5) * sy)),
            },
          }
        : {}),
      thirds: regions.thirds,
      ...(regions.blob
        ? {
            blob: {
              x: Math.floor(regions.blob.x * sx),
              y: Math.floor(regions.blob.y * sy),
              width: Math.round(regions.blob.width * sx),
              height: Math.round(regions.blob.height * sy),
              area: regions.blob.area,
              mass: regions.blob.mass,
            },
          }
        : {}),
      ...(faithfulness ? { faithfulness } : {}),
      ...(r.map.note ? { note: r.map.note } : {}),
      ms: { map: mapMs, total: performance.now() - startedAt },
    };
  } finally {
    x.dispose();
  }
}

function argMaxOf(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] ?? 0) > (values[best] ?? 0)) best = i;
  return best;
}

/** The probability of class `c` for each input of a batch, from the pre-softmax scores. */
function classProbabilities(
  loaded: LoadedModel,
  input: ModelInput,
  c: number,
): (batch: Float32Array, count: number) => Promise<Float32Array> {
  const forward = buildForward(loaded.model);
  return async (batch, count) => {
    const p = tf.tidy(() =>
      tf
        .softmax(
          forward.run(tf.tensor4d(batch, [count, input.height, input.width, input.channels])),
        )
        .slice([0, c], [count, 1])
        .reshape([count]),
    );
    const data = (await p.data()) as Float32Array;
    p.dispose();
    return data;
  };
}

/** A model input as an 8-bit RGB picture (grey inputs repeated over the channels). */
export function inputAsRgb(input: ModelInput): RgbImage {
  const pixels = inputToDisplayBytes(input);
  if (input.channels === 3) return { data: pixels, width: input.width, height: input.height };
  const data = new Uint8Array(pixels.length * 3);
  for (let i = 0; i < pixels.length; i++) data.fill(pixels[i] ?? 0, i * 3, i * 3 + 3);
  return { data, width: input.width, height: input.height };
}
