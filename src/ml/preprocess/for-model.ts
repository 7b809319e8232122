import sharp from 'sharp';
import { decodeImage, type ImageLimits } from '../../imaging/decode.ts';
import type { ModelMeta } from '../model-meta.ts';
import { preprocessDigit, type DigitStats } from './digit.ts';

export type { ImageLimits } from '../../imaging/decode.ts';

/** What a model receives: `[height, width, channels]` row-major, interleaved channels. */
export interface ModelInput {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** Value range of `data`: [0, 1] (`unit`, the default) or [-1, 1] (`signed`). */
  readonly range?: 'unit' | 'signed';
  /** Measurements of the digit pipeline (`mnist-digit` models only). */
  readonly stats?: DigitStats;
}

/**
 * Turns an upload into the input a model expects, as its `meta.preprocess` says:
 * `mnist-digit` runs the photo pipeline of {@link preprocessDigit}; `rgb-unit` and `rgb-signed`
 * resize the upright RGB image to the input size (squashing, as the training images were) and
 * scale it to [0, 1] or [-1, 1].
 *
 * @throws {UserError} the decoder's ids, and `image.no_ink` for a digit model.
 * @example
 * const input = await preprocessForModel(loaded.meta, bytes, { maxBytes, maxPixels });
 */
export async function preprocessForModel(
  meta: Pick<ModelMeta, 'preprocess' | 'inputShape'>,
  bytes: Uint8Array,
  limits: ImageLimits,
): Promise<ModelInput> {
  const [height, width, channels] = meta.inputShape;
  if (meta.preprocess === 'mnist-digit') {
    const { input, stats } = await preprocessDigit(bytes, { limits, preview: false });
    return { data: input, width: 28, height: 28, channels: 1, stats };
  }
  const img = await decodeImage(bytes, limits, { maxSide: 4 * Math.max(width, height) });
  const raw = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
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
