import sharp from 'sharp';
import { decodeImage, type ImageLimits } from '../../imaging/decode.ts';
import type { ModelMeta } from '../model-meta.ts';
import { preprocessDigit, type DigitStats } from './digit.ts';
import { preprocessFashion } from './fashion.ts';

export type { ImageLimits } from '../../imaging/decode.ts';

/**
 * How the values of a model input relate to the picture: [0, 1] (`unit`), [-1, 1] (`signed`), or
 * `caffe`: BGR order, 0..255 minus {@link CAFFE_MEAN_BGR}. {@link inputToDisplayBytes} undoes it.
 */
export type InputRange = 'unit' | 'signed' | 'caffe';

/** The ImageNet channel means (B, G, R) that Keras `preprocess_input` mode 'caffe' subtracts. */
export const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68] as const;

/** What a model receives: `[height, width, channels]` row-major, interleaved channels. */
export interface ModelInput {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** How `data` relates to the picture; `unit` when absent. */
  readonly range?: InputRange;
  /** Measurements of the digit pipeline (`mnist-digit` models only). */
  readonly stats?: DigitStats;
}

/**
 * Turns an upload into the input a model expects, as its `meta.preprocess` says:
 * `mnist-digit` runs the photo pipeline of {@link preprocessDigit}; `fashion-gray` that of
 * {@link preprocessFashion} (grey, garment bright on a 0 background whichever side of the
 * background it lies on, trimmed and padded to the input size keeping its aspect ratio);
 * `rgb-unit` and `rgb-signed` resize the upright RGB image to the input size (squashing, as the
 * training images were) and scale it to [0, 1] or [-1, 1];
 * `caffe` resizes it likewise, reorders the channels to BGR and subtracts {@link CAFFE_MEAN_BGR}
 * without scaling (Keras `preprocess_input` mode 'caffe').
 *
 * @throws {UserError} the decoder's ids, `image.no_ink` for a digit model and `image.no_garment`
 *   for a `fashion-gray` one.
 * @throws {Error} for `caffe` with an input shape of other than 3 channels, `fashion-gray` with
 *   other than 1.
 * @example
 * const input = await preprocessForModel(loaded.meta, bytes, { maxBytes, maxPixels });
 */
export async function preprocessForModel(
  meta: Pick<ModelMeta, 'preprocess' | 'inputShape'>,
  bytes: Uint8Array,
  limits: ImageLimits,
): Promise<ModelInput> {
  const [height, width, channels] = meta.inputShape;
  if (meta.preprocess === 'caffe' && channels !== 3) {
    throw new Error(`preprocess "caffe" needs an input of 3 channels, not ${channels}`);
  }
  if (meta.preprocess === 'fashion-gray' && channels !== 1) {
    throw new Error(`preprocess "fashion-gray" needs an input of 1 channel, not ${channels}`);
  }
  if (meta.preprocess === 'mnist-digit') {
    const { input, stats } = await preprocessDigit(bytes, { limits, preview: false });
    return { data: input, width: 28, height: 28, channels: 1, stats };
  }
  if (meta.preprocess === 'fashion-gray') {
    const { input } = await preprocessFashion(bytes, limits, { width, height });
    return { data: input, width, height, channels: 1, range: 'unit' };
  }
  const img = await decodeImage(bytes, limits, { maxSide: 4 * Math.max(width, height) });
  const raw = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  if (meta.preprocess === 'caffe') {
    const [meanB, meanG, meanR] = CAFFE_MEAN_BGR;
    const data = new Float32Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      data[i * 3] = (raw[i * 3 + 2] ?? 0) - meanB;
      data[i * 3 + 1] = (raw[i * 3 + 1] ?? 0) - meanG;
      data[i * 3 + 2] = (raw[i * 3] ?? 0) - meanR;
    }
    return { data, width, height, channels: 3, range: 'caffe' };
  }
  const signed = meta.preprocess === 'rgb-signed';
  const data = Float32Array.from(raw, (v) => (signed ? v / 127.5 - 1 : v / 255));
  if (channels === 1) {
    const grey = new Float32Array(width * height);
    for (let i = 0; i < grey.length; i++) {
      grey[i] =
        0.299 * (data[i * 3] ?? 0) +
        0.587 * (data[i * 3 + 1] ?? 0) +
        0.114 * (data[i * 3 + 2] ?? 0);
    }
    return { data: grey, width, height, channels: 1, range: signed ? 'signed' : 'unit' };
  }
  return { data, width, height, channels: 3, range: signed ? 'signed' : 'unit' };
}

/**
 * Whether a model's input is the whole upload resized, so that a position in the input scales to
 * the same place in the photo (`rgb-unit`, `rgb-signed`, `caffe`), or a normalised crop of it
 * (`mnist-digit`, `fashion-gray`), whose positions only the input itself shows.
 * @example
 * inputSpansImage('rgb-unit'); // true: draw a heat map over the photo
 */
export function inputSpansImage(preprocess: ModelMeta['preprocess']): boolean {
  return preprocess !== 'mnist-digit' && preprocess !== 'fashion-gray';
}

/**
 * A model input as 8-bit pixels for display: the same layout and channel count, in RGB order,
 * with the preprocessing undone (`signed`: (v + 1) / 2; `caffe`: the means added back and BGR
 * turned into RGB). Values outside the picture's range are clamped.
 * @example
 * const bytes = inputToDisplayBytes(input); // width * height * channels values 0..255
 */
export function inputToDisplayBytes(
  input: Pick<ModelInput, 'data' | 'width' | 'height' | 'channels' | 'range'>,
): Uint8Array {
  const { data, channels, range } = input;
  const out = new Uint8Array(input.width * input.height * channels);
  const caffe = range === 'caffe' && channels === 3;
  for (let i = 0; i < out.length; i++) {
    let v: number;
    if (caffe) {
      // Output channel c (R, G, B) is input channel 2 - c (B, G, R).
      const c = i % 3;
      const bgr = 2 - c;
      v = ((data[i - c + bgr] ?? 0) + (CAFFE_MEAN_BGR[bgr] ?? 0)) / 255;
    } else {
      const raw = data[i] ?? 0;
      v = range === 'signed' ? (raw + 1) / 2 : raw;
    }
    out[i] = Math.round(Math.min(1, Math.max(0, v)) * 255);
  }
  return out;
}
