import sharp from 'sharp';
import { decodeImage, type ImageLimits } from '../../imaging/decode.ts';
import type { ModelMeta } from '../model-meta.ts';
import { preprocessDigit, type DigitStats } from './digit.ts';
import { preprocessFashion } from './fashion.ts';

import { CAFFE_MEAN_BGR, type InputRange } from '../../imaging/input-pixels.ts';

export type { ImageLimits } from '../../imaging/decode.ts';
export {
  CAFFE_MEAN_BGR,
  inputToDisplayBytes,
  type InputRange,
} from '../../imaging/input-pixels.ts';

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
