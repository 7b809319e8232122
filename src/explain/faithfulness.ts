/**
 * A simple faithfulness check of a map, in the spirit of the deletion metric (Petsiuk et al.
 * 2018, RISE): blur out the hottest 20% of the image and see how much the class's confidence
 * drops, against blurring a random 20%. A map that shows what the model uses gives the larger
 * drop. The image is divided into an 8x8 grid of cells and whole cells are blurred, so that the
 * hot and the random areas are alike in shape.
 */
import seedrandom from 'seedrandom';
import type { HeatMap } from './heat-map.ts';

/** A model input, `[height, width, channels]` row-major. */
export interface PlainInput {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** The outcome of {@link measureFaithfulness}. */
export interface Faithfulness {
  /** Share of the image blurred (about 0.2: whole grid cells). */
  readonly fraction: number;
  /** The class's probability on the unchanged image. */
  readonly baseline: number;
  /** ... with the hottest cells blurred. */
  readonly hotConfidence: number;
  /** ... with random cells blurred (mean over the draws). */
  readonly randomConfidence: number;
  /** baseline - hotConfidence. */
  readonly hotDrop: number;
  /** baseline - randomConfidence. */
  readonly randomDrop: number;
}

/** Options of {@link measureFaithfulness}. */
export interface FaithfulnessOptions {
  readonly fraction?: number;
  /** Cells per side (default 8). */
  readonly grid?: number;
  /** Random draws averaged (default 5). */
  readonly draws?: number;
  readonly seed?: number;
}

/**
 * Runs the check.
 * @param map the explanation at the input's size.
 * @param probabilities maps a batch of inputs (`[n, height, width, channels]` values) to the
 *   class's probability for each.
 */
export async function measureFaithfulness(
  input: PlainInput,
  map: HeatMap,
  probabilities: (batch: Float32Array, count: number) => Promise<Float32Array>,
  options: FaithfulnessOptions = {},
): Promise<Faithfulness> {
  const grid = options.grid ?? 8;
  const { width, height, channels } = input;
  const cellOf = (x: number, y: number): number =>
    Math.floor((y * grid) / height) * grid + Math.floor((x * grid) / width);
  const heat = new Float64Array(grid * grid);
  const pixels = new Float64Array(grid * grid);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = cellOf(x, y);
      heat[c]! +=
        map.data[
          Math.floor((y * map.height) / height) * map.width + Math.floor((x * map.width) / width)
        ] ?? 0;
      pixels[c]! += 1;
    }
  }
  const cells = Math.max(1, Math.round((options.fraction ?? 0.2) * grid * grid));
  const order = Array.from(heat.keys()).sort(
    (a, b) => heat[b]! / pixels[b]! - heat[a]! / pixels[a]!,
  );
  const rng = seedrandom(String(options.seed ?? 1));
  const draws = options.draws ?? 5;
  const sets = [order.slice(0, cells)];
  for (let d = 0; d < draws; d++) {
    const all = Array.from(heat.keys());
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    sets.push(all.slice(0, cells));
  }
  const blurred = gaussianBlur(input, Math.max(1, Math.max(width, height) / 16));
  const size = width * height * channels;
  const batch = new Float32Array(size * (sets.length + 1));
  batch.set(input.data, 0);
  sets.forEach((set, k) => {
    const chosen = new Set(set);
    const out = batch.subarray(size * (k + 1), size * (k + 2));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const from = chosen.has(cellOf(x, y)) ? blurred : input.data;
        const i = (y * width + x) * channels;
        for (let ch = 0; ch < channels; ch++) out[i + ch] = from[i + ch] ?? 0;
      }
    }
  });
  const p = await probabilities(batch, sets.length + 1);
  const baseline = p[0] ?? 0;
  const hotConfidence = p[1] ?? 0;
  let sum = 0;
  for (let k = 2; k < sets.length + 1; k++) sum += p[k] ?? 0;
  const randomConfidence = sum / draws;
  return {
    fraction: cells / (grid * grid),
    baseline,
    hotConfidence,
    randomConfidence,
    hotDrop: baseline - hotConfidence,
    randomDrop: baseline - randomConfidence,
  };
}

/** A separable Gaussian blur of an interleaved image, edges clamped. */
export function gaussianBlur(input: PlainInput, sigma: number): Float32Array {
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) =>
    Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)),
  );
  const norm = kernel.reduce((a, b) => a + b, 0);
  const k = kernel.map((v) => v / norm);
  const { width, height, channels } = input;
  const pass = (src: Float32Array, horizontal: boolean): Float32Array => {
    const dst = new Float32Array(src.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let ch = 0; ch < channels; ch++) {
          let acc = 0;
          for (let t = -radius; t <= radius; t++) {
            const xx = horizontal ? Math.min(width - 1, Math.max(0, x + t)) : x;
            const yy = horizontal ? y : Math.min(height - 1, Math.max(0, y + t));
            acc += (k[t + radius] ?? 0) * (src[(yy * width + xx) * channels + ch] ?? 0);
          }
          dst[(y * width + x) * channels + ch] = acc;
        }
      }
    }
    return dst;
  };
  return pass(pass(input.data, true), false);
}
