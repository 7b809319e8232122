/**
 * The map an explanation returns, and the two steps every method shares after its maths:
 * normalization to [0, 1] with an epsilon, and resizing to an image's size.
 */
import * as tf from '@tensorflow/tfjs';

/** A map over an image: `height x width` values in [0, 1], row-major, 1 = most important. */
export interface HeatMap {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

/**
 * Why a map is all zero:
 * - `empty`: nothing is above zero (Grad-CAM: every weighted activation is negative, so no
 *   position raises the class score; saliency: the gradient is zero everywhere);
 * - `flat`: the map has the same value everywhere (a uniform image), so it says nothing.
 */
export type MapNote = 'empty' | 'flat';

/** A normalized map, with a note when it had to be zeroed. */
export interface NormalizedMap extends HeatMap {
  readonly note?: MapNote;
}

/**
 * Scales a map to [0, 1]: (v - min) / (max - min), as pytorch-grad-cam does. Maps without a
 * meaningful range become all zero with a {@link MapNote} instead of dividing by ~0: one whose
 * maximum is at most `epsilon` (`empty`), or whose range is under `epsilon` relative to its
 * maximum (`flat`). Non-finite values count as 0, so the result never holds NaN.
 */
export function normalizeMap(
  values: ArrayLike<number>,
  width: number,
  height: number,
  epsilon = 1e-6,
): NormalizedMap {
  const n = width * height;
  const data = new Float32Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i] ?? 0;
    const x = Number.isFinite(v) ? v : 0;
    data[i] = x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (!(max > epsilon)) return { data: data.fill(0), width, height, note: 'empty' };
  const range = max - min;
  if (range <= epsilon * max) return { data: data.fill(0), width, height, note: 'flat' };
  for (let i = 0; i < n; i++) data[i] = ((data[i] ?? 0) - min) / range;
  return { data, width, height };
}

/**
 * Resizes a map bilinearly (half-pixel centres, so each cell stays over the part of the image it
 * describes), height and width scaled separately: a 7x7 map on a 500x334 photo becomes 500x334.
 *
 * Tensors: none left behind.
 */
export function resizeMap(map: HeatMap, width: number, height: number): HeatMap {
  if (map.width === width && map.height === height) return map;
  const data = tf.tidy(() =>
    tf.image
      .resizeBilinear(
        tf.tensor3d(map.data, [map.height, map.width, 1]),
        [height, width],
        false,
        true,
      )
      .clipByValue(0, 1)
      .dataSync(),
  ) as Float32Array;
  return { data, width, height };
}

/** The position of a map's largest value (the first one), in map pixels. */
export function argMax(map: HeatMap): { x: number; y: number; value: number } {
  let best = 0;
  for (let i = 1; i < map.data.length; i++)
    if ((map.data[i] ?? 0) > (map.data[best] ?? 0)) best = i;
  return { x: best % map.width, y: Math.floor(best / map.width), value: map.data[best] ?? 0 };
}
