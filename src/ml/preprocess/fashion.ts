/**
 * A photo of a garment as a Fashion-MNIST model expects it. Fashion-MNIST (Xiao, Rasul & Vollgraf
 * 2017, section 2) made its images from product photos on white: trim the edges close to the
 * corner colour, resize the longest side to 28, centre on a 28x28 canvas, negate, 8-bit grey. So
 * a garment is bright on a black (exactly 0) background, filling the frame along its longer side.
 * This pipeline does the same to a student's photo:
 *
 * 1. decode (upright, transparency flattened) and take the Rec. 601 luma, in [0, 1];
 * 2. the background is the median of the border pixels (the outer 3% of each side);
 * 3. the garment's side of it decides the polarity: the pixels inside the border that differ from
 *    the background by more than {@link NOISE} add up how far they lie above it and how far
 *    below, and the larger sum wins, so a dark garment on a mid-grey table and a white one on a
 *    light grey one are both found, whatever the background's own lightness;
 * 4. normalise against the background by the distance from it to the end of the garment's side,
 *    so that the background becomes 0 whatever the lighting: a darker garment
 *    `(background - g) / background` (the background taken as white, the garment inverted: dark
 *    cloth bright), a lighter one `(g - background) / (1 - background)`; clamped to [0, 1];
 * 5. trim to the box of rows and columns holding the garment (normalised value over
 *    {@link FOREGROUND}, on at least 1% of the row or column); none at all is a blank picture,
 *    refused rather than classified;
 * 6. resize the box keeping its aspect ratio so its longer side fills the input, and pad the
 *    shorter side, centred, with the background colour (0).
 *
 * The paper's sharpening step is left out: the resize kernel (Lanczos-3) keeps edges crisp.
 */
import sharp from 'sharp';
import { UserError } from '../../errors.ts';
import { decodeImage, type ImageLimits } from '../../imaging/decode.ts';

/** Longest side the photo is decoded at: enough for a garment that fills a tenth of it. */
const WORK_SIDE = 512;

/** Share of each side taken as the border whose median is the background colour. */
const BORDER_SHARE = 0.03;

/**
 * Grey-level difference from the background (in [0, 1]) below which a pixel is taken as noise
 * (JPEG artefacts, uneven light) when deciding on which side of the background the garment lies.
 */
const NOISE = 0.04;

/** Normalised value (0 is the background, 1 the most contrasting) over which a pixel is garment. */
export const FOREGROUND = 0.15;

/** Share of a row's (column's) pixels, at least, that must be garment for it to be kept. */
const LINE_SHARE = 0.01;

/** What {@link preprocessFashion} found in the photo. */
export interface FashionStats {
  /** Grey level of the background (border median), 0..1, before any inversion. */
  readonly background: number;
  /** True when the garment is darker than the background, so the picture was inverted. */
  readonly inverted: boolean;
  /** Size the photo was worked at (after down-scaling to {@link WORK_SIDE}). */
  readonly workWidth: number;
  readonly workHeight: number;
  /** The trimmed garment box, in work pixels. */
  readonly box: {
    readonly x: number;
    readonly y: number;
    readonly width: number;
    readonly height: number;
  };
}

/**
 * Turns a photo of a garment into a Fashion-MNIST-like input; see the module comment for the
 * steps.
 *
 * @param size the model input, default 28x28.
 * @returns `input`: `[height, width]` row-major (one channel), values in [0, 1], the garment
 *   bright on a 0 background; and what was measured.
 * @throws {UserError} the decoder's ids (`image.empty`, `image.pdf`...), and `image.no_garment`
 *   when nothing stands out from the background.
 * @example
 * const { input } = await preprocessFashion(photo, limits); // 784 values, garment bright
 * const x = tf.tensor4d(input, [1, 28, 28, 1]);
 */
export async function preprocessFashion(
  bytes: Uint8Array,
  limits: ImageLimits,
  size: { readonly width: number; readonly height: number } = { width: 28, height: 28 },
): Promise<{ input: Float32Array; stats: FashionStats }> {
  const img = await decodeImage(bytes, limits, { maxSide: WORK_SIDE });
  const { width: w, height: h } = img;
  const grey = new Float32Array(w * h);
  for (let i = 0; i < grey.length; i++) {
    grey[i] =
      (0.299 * (img.data[i * 3] ?? 0) +
        0.587 * (img.data[i * 3 + 1] ?? 0) +
        0.114 * (img.data[i * 3 + 2] ?? 0)) /
      255;
  }
  const background = borderMedian(grey, w, h);
  const inverted = garmentIsDarker(grey, w, h, background);
  // The distance from the background to black (a darker garment) or to white (a lighter one);
  // at least one grey level, so a white background with nothing lighter on it divides safely.
  const range = Math.max(1 / 255, inverted ? background : 1 - background);
  const norm = new Uint8Array(w * h);
  for (let i = 0; i < grey.length; i++) {
    const g = grey[i] ?? 0;
    const v = (inverted ? background - g : g - background) / range;
    norm[i] = Math.round(Math.min(1, Math.max(0, v)) * 255);
  }
  const box = garmentBox(norm, w, h);
  if (!box) {
    throw new UserError('image.no_garment', 'nothing stands out from the background');
  }
  const crop = new Uint8Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    const from = (box.y + y) * w + box.x;
    crop.set(norm.subarray(from, from + box.width), y * box.width);
  }
  const { data, info } = await sharp(crop, {
    raw: { width: box.width, height: box.height, channels: 1 },
  })
    .resize(size.width, size.height, {
      fit: 'contain',
      background: { r: 0, g: 0, b: 0, alpha: 1 },
      kernel: 'lanczos3',
    })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const input = new Float32Array(size.width * size.height);
  for (let i = 0; i < input.length; i++) input[i] = (data[i * info.channels] ?? 0) / 255;
  return { input, stats: { background, inverted, workWidth: w, workHeight: h, box } };
}

/** Median of the pixels within {@link BORDER_SHARE} of an edge (at least one pixel deep). */
function borderMedian(grey: Float32Array, w: number, h: number): number {
  const { dx, dy } = borderDepth(w, h);
  const values: number[] = [];
  for (let y = 0; y < h; y++) {
    const edgeRow = y < dy || y >= h - dy;
    for (let x = 0; x < w; x++) {
      if (edgeRow || x < dx || x >= w - dx) values.push(grey[y * w + x] ?? 0);
    }
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? 0;
}

/** How many pixels deep the border is, horizontally and vertically ({@link BORDER_SHARE}). */
function borderDepth(w: number, h: number): { dx: number; dy: number } {
  return {
    dx: Math.max(1, Math.round(w * BORDER_SHARE)),
    dy: Math.max(1, Math.round(h * BORDER_SHARE)),
  };
}

/**
 * Whether the garment is darker than the background: inside the border, the pixels further than
 * {@link NOISE} below the background outweigh, by how far they lie from it, those above it. The
 * background's own lightness says nothing: a navy shirt on a grey table and a white one on a
 * light grey sheet both have a background near the middle. A tie (a blank picture) counts as
 * darker, the product-photo case, and is refused later for want of a garment.
 */
function garmentIsDarker(grey: Float32Array, w: number, h: number, background: number): boolean {
  const { dx, dy } = borderDepth(w, h);
  let above = 0;
  let below = 0;
  for (let y = dy; y < h - dy; y++) {
    for (let x = dx; x < w - dx; x++) {
      const d = (grey[y * w + x] ?? 0) - background;
      if (d > NOISE) above += d;
      else if (d < -NOISE) below -= d;
    }
  }
  return below >= above;
}

/**
 * The smallest box holding every row and column in which at least {@link LINE_SHARE} of the
 * pixels (and at least one) are garment: a few noisy pixels do not stretch it. Undefined when no
 * row or column is.
 */
function garmentBox(
  norm: Uint8Array,
  w: number,
  h: number,
): { x: number; y: number; width: number; height: number } | undefined {
  const threshold = FOREGROUND * 255;
  const rows = new Uint32Array(h);
  const cols = new Uint32Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if ((norm[y * w + x] ?? 0) > threshold) {
        rows[y] = (rows[y] ?? 0) + 1;
        cols[x] = (cols[x] ?? 0) + 1;
      }
    }
  }
  const span = (counts: Uint32Array, length: number): [number, number] | undefined => {
    const need = Math.max(1, Math.floor(length * LINE_SHARE));
    let first = -1;
    let last = -1;
    counts.forEach((c, i) => {
      if (c >= need) {
        if (first < 0) first = i;
        last = i;
      }
    });
    return first < 0 ? undefined : [first, last];
  };
  const ys = span(rows, w);
  const xs = span(cols, h);
  if (!ys || !xs) return undefined;
  return { x: xs[0], y: ys[0], width: xs[1] - xs[0] + 1, height: ys[1] - ys[0] + 1 };
}
