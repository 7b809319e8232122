import type { PRNG } from 'seedrandom';
import { inverseAffine } from './augment.ts';
import { addWritingVariant } from './digit-variants.ts';
import {
  DEFAULT_HANDWRITING,
  WIDE_HANDWRITING,
  drawHandwrittenDigit,
  type HandwritingOptions,
} from './handwriting.ts';
import type { BatchFiller, LabelledImages } from './train.ts';

/**
 * Chances and ranges of the photo augmentation of {@link photoDigitFiller}: what separates a
 * student's photo, after the bot's preprocessing (`preprocessDigit`), from an MNIST scan.
 */
export interface PhotoAugmentOptions {
  /** Share of samples replaced by a synthetic handwritten digit of the same class (`handwriting.ts`). */
  readonly synthetic: number;
  /** How those synthetic digits are written. */
  readonly handwriting: HandwritingOptions;
  /** Largest rotation either way, degrees; rotations beyond `commonRotationDeg` are rarer. */
  readonly maxRotationDeg: number;
  readonly commonRotationDeg: number;
  /** Largest shear (slant) either way, tangent: 0.58 is 30 degrees. */
  readonly maxShear: number;
  /** Share of samples whose shear is drawn from the whole range (the rest: within half of it). */
  readonly steepShear: number;
  /** Largest relative change of scale either way, and of the aspect ratio. */
  readonly maxScale: number;
  readonly maxAspect: number;
  /** Largest shift either way, pixels. */
  readonly maxShiftPx: number;
  /** Chance and largest displacement (pixels) of an elastic distortion (Simard et al. 2003). */
  readonly elastic: number;
  readonly elasticPx: number;
  /** Chances of a thicker (marker) or thinner (hairline) stroke by one pixel. */
  readonly thicken: number;
  readonly thin: number;
  /** Chance of a hollow (outlined) stroke. */
  readonly hollow: number;
  /**
   * Share of the hollow strokes outlined thin-walled around a broad stroke (a 1 px line each
   * side of a gap as wide as a marker stroke, as an outline font or a traced letter is); the
   * rest get a 2 px wall around the stroke itself.
   */
  readonly hollowWide: number;
  /** Chance of a low-resolution digit (small in a big page), drawn at 9..15 px and scaled up. */
  readonly lowRes: number;
  /** Chance of chalk grain (ink coverage broken at random). */
  readonly grain: number;
  /** Chance of a leftover grid or ruling line across the image. */
  readonly gridLine: number;
  /** Chance of broken strokes: 1..4 short gaps cut where there is ink (a skipping pen, chalk). */
  readonly breaks: number;
}

/** The augmentation of the shipped `digits-photo` (a chance of 0 draws no random number). */
export const DEFAULT_PHOTO_AUGMENT: PhotoAugmentOptions = {
  synthetic: 0.25,
  handwriting: DEFAULT_HANDWRITING,
  maxRotationDeg: 30,
  commonRotationDeg: 12,
  maxShear: 0.58,
  steepShear: 0.3,
  maxScale: 0.15,
  maxAspect: 0.2,
  maxShiftPx: 2,
  elastic: 0.5,
  elasticPx: 2.5,
  thicken: 0.2,
  thin: 0.15,
  hollow: 0.05,
  hollowWide: 0,
  lowRes: 0.1,
  grain: 0.08,
  gridLine: 0.05,
  breaks: 0,
};

/**
 * A wider augmentation toward the misses of docs/models.md (more synthetic digits in
 * {@link WIDE_HANDWRITING}, steep slant for half the samples, narrower and wider digits, broken
 * strokes, more hollow, small and gridded digits). `digits-photo`'s recipe trains the wider
 * `digitnet.ts` with it; on the course's LeNet it did not win on the real photos (docs/models.md).
 */
export const WIDE_PHOTO_AUGMENT: PhotoAugmentOptions = {
  ...DEFAULT_PHOTO_AUGMENT,
  synthetic: 0.3,
  handwriting: WIDE_HANDWRITING,
  steepShear: 0.5,
  maxAspect: 0.25,
  hollow: 0.08,
  lowRes: 0.12,
  gridLine: 0.06,
  breaks: 0.1,
};

/** Coarse grid of the elastic displacement field (GRID x GRID nodes over the image). */
const GRID = 4;

/**
 * Writes a warped copy of `src` into `dst` (both float32 `[size, size]`, [0, 1]): a random
 * rotation, slant (shear), scale, aspect change and shift about the centre, plus with chance
 * `opt.elastic` a smooth random displacement field (Simard, Steinkraus & Platt 2003, "Best
 * practices for convolutional neural networks applied to visual document analysis", section 2;
 * here bilinearly interpolated from a coarse grid of random offsets, which is smooth like their
 * Gaussian-filtered field and cheaper). Bilinear sampling, zero outside.
 */
export function warpDigit(
  src: Float32Array,
  dst: Float32Array,
  size: number,
  rng: PRNG,
  opt: PhotoAugmentOptions = DEFAULT_PHOTO_AUGMENT,
): void {
  const u = (r: number): number => (rng() * 2 - 1) * r;
  const c = (size - 1) / 2;
  const rot = rng() < 0.8 ? u(opt.commonRotationDeg) : u(opt.maxRotationDeg);
  const theta = (rot * Math.PI) / 180;
  const shear = rng() < 1 - opt.steepShear ? u(opt.maxShear / 2) : u(opt.maxShear);
  const scale = 1 + u(opt.maxScale);
  const aspect = 1 + u(opt.maxAspect);
  const sxs = scale * aspect;
  const sys = scale / aspect;
  const tx = u(opt.maxShiftPx);
  const ty = u(opt.maxShiftPx);
  const [ia, ib, id, ie] = inverseAffine(theta, shear, sxs, sys);
  let field: Float32Array | undefined;
  if (rng() < opt.elastic) {
    field = new Float32Array(GRID * GRID * 2);
    for (let i = 0; i < field.length; i++) field[i] = u(opt.elasticPx);
  }
  const cell = (size - 1) / (GRID - 1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - c - tx;
      const dy = y - c - ty;
      let sx = ia * dx + ib * dy + c;
      let sy = id * dx + ie * dy + c;
      if (field) {
        const gx = x / cell;
        const gy = y / cell;
        const gx0 = Math.min(GRID - 2, Math.floor(gx));
        const gy0 = Math.min(GRID - 2, Math.floor(gy));
        const fx = gx - gx0;
        const fy = gy - gy0;
        const at = (j: number, i: number, k: number): number =>
          field[((gy0 + j) * GRID + gx0 + i) * 2 + k] ?? 0;
        for (let k = 0; k < 2; k++) {
          const v =
            (at(0, 0, k) * (1 - fx) + at(0, 1, k) * fx) * (1 - fy) +
            (at(1, 0, k) * (1 - fx) + at(1, 1, k) * fx) * fy;
          if (k === 0) sx += v;
          else sy += v;
        }
      }
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const p = (yy: number, xx: number): number =>
        yy < 0 || yy >= size || xx < 0 || xx >= size ? 0 : (src[yy * size + xx] ?? 0);
      dst[y * size + x] =
        (p(y0, x0) * (1 - fx) + p(y0, x0 + 1) * fx) * (1 - fy) +
        (p(y0 + 1, x0) * (1 - fx) + p(y0 + 1, x0 + 1) * fx) * fy;
    }
  }
}

/**
 * Grey-level dilation (`max`) or erosion (`min`) over the 3x3 cross, `src` to `dst` (float32
 * `[size, size]`): the stroke grows or shrinks by about one pixel each side.
 */
export function morph(
  src: Float32Array,
  dst: Float32Array,
  size: number,
  op: 'dilate' | 'erode',
): void {
  const pick = op === 'dilate' ? Math.max : Math.min;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const at = (yy: number, xx: number): number =>
        yy < 0 || yy >= size || xx < 0 || xx >= size ? 0 : (src[yy * size + xx] ?? 0);
      dst[i] = pick(src[i] ?? 0, at(y - 1, x), at(y + 1, x), at(y, x - 1), at(y, x + 1));
    }
  }
}

/**
 * Cuts `gaps` short gaps into the stroke of `img` (float32 `[size, size]`, ink bright), in place:
 * each gap is centred on a random pixel with ink above 0.5 and clears a disc of radius 1..1.8 px
 * (soft-edged) across the stroke, as a skipping pen or chalk on a rough board leaves. An image
 * without ink is left as it is.
 */
export function breakStrokes(img: Float32Array, size: number, gaps: number, rng: PRNG): void {
  const ink: number[] = [];
  for (let i = 0; i < img.length; i++) if ((img[i] ?? 0) > 0.5) ink.push(i);
  if (ink.length === 0) return;
  for (let g = 0; g < gaps; g++) {
    const at = ink[Math.floor(rng() * ink.length)] ?? 0;
    const cx = at % size;
    const cy = Math.floor(at / size);
    const r = 1 + rng() * 0.8;
    for (let y = Math.max(0, cy - 2); y <= Math.min(size - 1, cy + 2); y++) {
      for (let x = Math.max(0, cx - 2); x <= Math.min(size - 1, cx + 2); x++) {
        const keep = Math.max(0, Math.min(1, Math.hypot(x - cx, y - cy) - r + 0.5));
        const i = y * size + x;
        img[i] = (img[i] ?? 0) * keep;
      }
    }
  }
}

/**
 * Photo-like degradations of one 28x28 digit, in place (float32 `[size, size]`, ink bright):
 * stroke one pixel thicker or thinner, hollow outline (a thickened stroke minus its core, or
 * the one-pixel rim of a broadened stroke),
 * low resolution (a digit only 9..15 px tall in the photo), chalk grain, broken strokes
 * ({@link breakStrokes}), a leftover grid line.
 * `tmp` is scratch space of the same size.
 */
export function degradeDigit(
  img: Float32Array,
  tmp: Float32Array,
  size: number,
  rng: PRNG,
  opt: PhotoAugmentOptions = DEFAULT_PHOTO_AUGMENT,
): void {
  const r = rng();
  if (r < opt.hollow) {
    if (opt.hollowWide > 0 && rng() < opt.hollowWide) {
      // The broad stroke is the gap; its one-pixel rim is the wall.
      morph(img, tmp, size, 'dilate');
      const broad = tmp.slice();
      morph(broad, img, size, 'dilate');
      let top = 0;
      for (let i = 0; i < img.length; i++) {
        img[i] = Math.max(0, (img[i] ?? 0) - (broad[i] ?? 0));
        top = Math.max(top, img[i] ?? 0);
      }
      if (top > 0) for (let i = 0; i < img.length; i++) img[i] = (img[i] ?? 0) / top;
    } else {
      const core = img.slice();
      morph(img, tmp, size, 'dilate');
      morph(tmp, img, size, 'dilate');
      for (let i = 0; i < img.length; i++) img[i] = Math.max(0, (img[i] ?? 0) - (core[i] ?? 0));
    }
  } else if (r < opt.hollow + opt.thicken) {
    morph(img, tmp, size, 'dilate');
    img.set(tmp);
  } else if (r < opt.hollow + opt.thicken + opt.thin) {
    morph(img, tmp, size, 'erode');
    let ink = 0;
    for (const v of tmp) ink += v;
    if (ink > 25) img.set(tmp);
  }
  if (rng() < opt.lowRes) {
    // Area-average down to `small` px, bilinear back up.
    const small = 9 + Math.floor(rng() * 7);
    const f = size / small;
    const lo = new Float32Array(small * small);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const k =
          Math.min(small - 1, Math.floor(y / f)) * small + Math.min(small - 1, Math.floor(x / f));
        lo[k] = (lo[k] ?? 0) + (img[y * size + x] ?? 0) / (f * f);
      }
    }
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const sx = Math.max(0, Math.min(small - 1, (x + 0.5) / f - 0.5));
        const sy = Math.max(0, Math.min(small - 1, (y + 0.5) / f - 0.5));
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const x1 = Math.min(small - 1, x0 + 1);
        const y1 = Math.min(small - 1, y0 + 1);
        const fx = sx - x0;
        const fy = sy - y0;
        const v =
          ((lo[y0 * small + x0] ?? 0) * (1 - fx) + (lo[y0 * small + x1] ?? 0) * fx) * (1 - fy) +
          ((lo[y1 * small + x0] ?? 0) * (1 - fx) + (lo[y1 * small + x1] ?? 0) * fx) * fy;
        img[y * size + x] = Math.min(1, v * 1.3);
      }
    }
  }
  if (rng() < opt.grain) {
    const depth = 0.3 + rng() * 0.4;
    for (let i = 0; i < img.length; i++) img[i] = (img[i] ?? 0) * (1 - depth * rng());
  }
  if (opt.breaks > 0 && rng() < opt.breaks) breakStrokes(img, size, 1 + Math.floor(rng() * 4), rng);
  if (rng() < opt.gridLine) {
    const horizontal = rng() < 0.5;
    const at = Math.floor(rng() * size);
    const v = 0.2 + rng() * 0.4;
    for (let t = 0; t < size; t++) {
      const i = horizontal ? at * size + t : t * size + at;
      img[i] = Math.max(img[i] ?? 0, v);
    }
  }
}

/**
 * The digit model's training batches for photos: each MNIST sample, or with chance
 * `opt.synthetic` a synthetic handwritten digit of the same class (`handwriting.ts`), gets the
 * continental 1 and 7 variants (`digit-variants.ts`), a warp ({@link warpDigit}) and photo-like
 * degradations ({@link degradeDigit}).
 *
 * @param data uint8 `[n, 28, 28, 1]` digits and their labels.
 * @returns a filler writing float32 `[indices.length, 28, 28, 1]`, [0, 1].
 */
export function photoDigitFiller(
  data: LabelledImages,
  opt: PhotoAugmentOptions = DEFAULT_PHOTO_AUGMENT,
): BatchFiller {
  const size = data.width;
  const area = size * data.height;
  const src = new Float32Array(area);
  const tmp = new Float32Array(area);
  return (indices, out, rng) => {
    for (let k = 0; k < indices.length; k++) {
      const index = indices[k] ?? 0;
      const label = data.labels[index] ?? 0;
      if (rng() < opt.synthetic) {
        drawHandwrittenDigit(label, src, size, rng, opt.handwriting);
      } else {
        for (let j = 0; j < area; j++) src[j] = (data.images[index * area + j] ?? 0) / 255;
        addWritingVariant(src, size, label, rng);
      }
      const dst = out.subarray(k * area, (k + 1) * area);
      warpDigit(src, dst, size, rng, opt);
      degradeDigit(dst, tmp, size, rng, opt);
    }
  };
}
