/**
 * Model inputs as pictures: how their values relate to pixels, and the way back to 8-bit RGB for
 * display. Pixels in, pixels out: it knows no model; the preprocessing in `ml/preprocess` produces
 * the values, the charts and explanation overlays show them.
 */

/**
 * How the values of a model input relate to the picture: [0, 1] (`unit`), [-1, 1] (`signed`), or
 * `caffe`: BGR order, 0..255 minus {@link CAFFE_MEAN_BGR}. {@link inputToDisplayBytes} undoes it.
 */
export type InputRange = 'unit' | 'signed' | 'caffe';

/** The ImageNet channel means (B, G, R) that Keras `preprocess_input` mode 'caffe' subtracts. */
export const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68] as const;

/**
 * A model input as 8-bit pixels for display: the same layout and channel count, in RGB order,
 * with the preprocessing undone (`signed`: (v + 1) / 2; `caffe`: the means added back and BGR
 * turned into RGB). Values outside the picture's range are clamped.
 * @example
 * const bytes = inputToDisplayBytes(input); // width * height * channels values 0..255
 */
export function inputToDisplayBytes(input: {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly range?: InputRange;
}): Uint8Array {
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
