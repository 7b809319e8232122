import sharp from 'sharp';
import { UserError } from '../../errors.ts';
import { decodeImage, type Backdrop, type ImageLimits } from '../../imaging/decode.ts';
import { labelComponents, type Component } from './components.ts';
import {
  blur3x3,
  boxBlur,
  cellQuantiles,
  closing,
  downsample,
  histogramQuantile,
  otsuThreshold,
  squareExtremum,
  upsampleBilinear,
  type Plane,
} from './filters.ts';

/** Side of the model input. */
export const DIGIT_SIZE = 28;
/**
 * MNIST normalisation (LeCun, Bottou, Bengio & Haffner 1998, section III.A, and the MNIST page):
 * the binary NIST digit is size-normalised to fit a 20x20 box keeping its aspect ratio, with
 * anti-aliasing (hence grey edges), then placed in 28x28 so that its centre of mass is at the
 * centre. Measured on the test set, that centre is pixel index (14, 14) on both axes.
 */
const BOX = 20;
const CENTRE_INDEX = 14;
/** Median stroke width of MNIST digits (2 * area / boundary of the > 0.5 mask), pixels at 28x28. */
const MNIST_STROKE = 2.6;

/** Longest side photos are shrunk to before analysis; ~1000 lets JPEG shrink 12 MP by 4 on load. */
const WORK_SIDE = 1000;
/** Below this darkness (1 - ink/background) nothing counts as ink. */
const MIN_CONTRAST = 0.15;

/** Ink colour relative to its background. */
export type Polarity = 'dark-ink' | 'light-ink';

/** Measurements for a "is this a digit at all?" decision and for debugging. */
export interface DigitStats {
  /** Share of the analysed image's pixels that are the digit's ink. */
  readonly inkFraction: number;
  /** Share of the digit's bounding box that is ink. */
  readonly boxFill: number;
  /** Significant ink components in the whole image (digit, text, doodles; not specks). */
  readonly components: number;
  /** Components grouped into the digit. */
  readonly digitComponents: number;
  /** Width / height of the digit's bounding box. */
  readonly bboxAspect: number;
  readonly polarity: Polarity;
  /** Darkness of the ink against its background, 0..1. */
  readonly contrast: number;
  /** Stroke width / digit height before normalisation (MNIST: about 0.13). */
  readonly strokeRatio: number;
  /** Dilation (> 0) or erosion (< 0) radius applied to reach an MNIST-like stroke, pixels. */
  readonly strokeAdjust: number;
  /** How transparency was flattened. */
  readonly backdrop: Backdrop;
  /** Analysed image size and the digit's box in it. */
  readonly workWidth: number;
  readonly workHeight: number;
  readonly box: {
    readonly x: number;
    readonly y: number;
    readonly width: number;
    readonly height: number;
  };
}

/** The model input and what was measured on the way. */
export interface PreprocessedDigit {
  /** 784 values, `[28, 28]` row-major, in [0, 1], ink bright: the MNIST convention. */
  readonly input: Float32Array;
  readonly stats: DigitStats;
  /** The input as a 28x28 8-bit grey PNG, to show the user what the model sees. */
  readonly preview: Uint8Array;
}

/** Options of {@link preprocessDigit}. */
export interface PreprocessOptions {
  /** Defaults to 20 MB and 40 megapixels, as `loadConfig()`. */
  readonly limits?: ImageLimits;
  /** Skips the PNG preview (saves about a millisecond). */
  readonly preview?: boolean;
}

const DEFAULT_LIMITS: ImageLimits = { maxBytes: 20_000_000, maxPixels: 40_000_000 };

/**
 * Turns a photo (or drawing) of one handwritten digit into an MNIST-like model input: decode
 * upright, pick the ink polarity, divide out the paper's uneven lighting, threshold, drop grid
 * lines and specks and the page edge, crop the digit, bring its stroke to MNIST thickness, fit it
 * in 20x20 with anti-aliasing and centre it by mass in 28x28.
 *
 * @throws {UserError} the decoder's ids, and `image.no_ink` when no ink-like mark is found.
 * @example
 * const { input, stats } = await preprocessDigit(photoBytes);
 * const x = tf.tensor4d(input, [1, 28, 28, 1]);
 */
export async function preprocessDigit(
  bytes: Uint8Array,
  options: PreprocessOptions = {},
): Promise<PreprocessedDigit> {
  const img = await decodeImage(bytes, options.limits ?? DEFAULT_LIMITS, { maxSide: WORK_SIDE });
  const { width: w, height: h } = img;
  const n = w * h;

  const luma = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    luma[i] =
      0.299 * (img.data[i * 3] ?? 0) +
      0.587 * (img.data[i * 3 + 1] ?? 0) +
      0.114 * (img.data[i * 3 + 2] ?? 0);
  }
  const polarity = decidePolarity({ data: luma, width: w, height: h });

  // From here on the ink is dark on a lighter background, whatever the photo.
  const grey: Plane = { data: luma, width: w, height: h };
  if (polarity === 'light-ink') for (let i = 0; i < n; i++) luma[i] = 255 - (luma[i] ?? 0);

  const darkness = inkDarkness(grey);
  const result = extractDigit(darkness, w, h);
  const input = normaliseToMnist(result.mask, result.maskWidth, result.maskHeight);
  const preview =
    options.preview === false
      ? new Uint8Array(0)
      : await sharp(Buffer.from(input.map((v) => Math.round(v * 255))), {
          raw: { width: DIGIT_SIZE, height: DIGIT_SIZE, channels: 1 },
        })
          .png()
          .toBuffer();
  const { bw, bh } = result;
  return {
    input,
    preview: new Uint8Array(preview),
    stats: {
      inkFraction: result.area / n,
      boxFill: result.area / (bw * bh),
      components: result.components,
      digitComponents: result.digitComponents,
      bboxAspect: bw / bh,
      polarity,
      contrast: result.contrast,
      strokeRatio: result.strokeWidth / Math.max(bw, bh),
      strokeAdjust: result.strokeAdjust,
      backdrop: img.backdrop,
      workWidth: w,
      workHeight: h,
      box: { x: result.x0, y: result.y0, width: bw, height: bh },
    },
  };
}

/**
 * Ink is the minority that departs most from its local background. The background is the median
 * of a coarse 3x3 grid of cells (immune to the ink, which rarely covers half a cell, and to the
 * digit's holes, which are background-coloured), interpolated to follow lighting gradients. The
 * polarity whose robust extreme (the K-th most deviant pixel) lies farther from it wins. Glare
 * or a lighting gradient moves the paper a few tens of levels; ink moves it a hundred or more.
 */
function decidePolarity(p: Plane): Polarity {
  const cells = Math.max(1, Math.min(3, Math.floor(Math.min(p.width, p.height) / 48)));
  const median = cellQuantiles(p, cells, cells, 0.5, 2);
  // Every other pixel on both axes: a quarter of the work, and strokes are wider than that.
  const sw = Math.ceil(p.width / 2);
  const sh = Math.ceil(p.height / 2);
  const bg = upsampleBilinear(median, sw, sh);
  const dark = new Uint32Array(256);
  const light = new Uint32Array(256);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const r = Math.round(p.data[2 * y * p.width + 2 * x]! - bg[y * sw + x]!);
      const b = Math.min(255, Math.abs(r));
      if (r < 0) dark[b] = dark[b]! + 1;
      else light[b] = light[b]! + 1;
    }
  }
  const k = Math.max(10, Math.round(sw * sh * 0.0003));
  return extremeAt(dark, k) >= extremeAt(light, k) ? 'dark-ink' : 'light-ink';
}

/** The value v such that at least k samples of the histogram are >= v. */
function extremeAt(hist: Uint32Array, k: number): number {
  let acc = 0;
  for (let b = hist.length - 1; b > 0; b--) {
    acc += hist[b] ?? 0;
    if (acc >= k) return b;
  }
  return 0;
}

/**
 * Darkness of each pixel against the paper around it, `1 - I / background`, in [0, 1]: the ratio
 * cancels uneven lighting (illumination multiplies reflectance). The background is a grey-level
 * closing (a "rolling ball" from above) with a square of ~16% of the image side, computed at
 * about 200 px and interpolated back: it fills strokes and holes narrower than the square but
 * keeps large dark areas (a desk around the page) as background, so they do not read as ink.
 */
function inkDarkness(grey: Plane): Float32Array {
  const { width: w, height: h } = grey;
  const f = Math.max(1, Math.round(Math.max(w, h) / 200));
  const small = downsample(grey, f);
  const r = Math.max(2, Math.round(0.08 * Math.max(small.width, small.height)));
  const bgSmall = boxBlur(closing(small, r), Math.max(1, Math.round(r / 4)));
  const bg = upsampleBilinear(bgSmall, w, h);
  const d = new Float32Array(w * h);
  const g = grey.data;
  for (let i = 0; i < d.length; i++) {
    const v = g[i]!;
    const b = bg[i]!;
    d[i] = v >= b ? 0 : 1 - v / (b > 8 ? b : 8);
  }
  // A 3x3 mean takes the edge off sensor and JPEG noise before thresholding.
  return blur3x3({ data: d, width: w, height: h }).data;
}

interface Extracted {
  /** Binary digit mask cropped to its box, after stroke adjustment. */
  mask: Float32Array;
  maskWidth: number;
  maskHeight: number;
  x0: number;
  y0: number;
  bw: number;
  bh: number;
  area: number;
  components: number;
  digitComponents: number;
  contrast: number;
  strokeWidth: number;
  strokeAdjust: number;
}

/** The value such that `k` pixels (outside a thin frame) are at least as dark. */
function inkLevel(d: Float32Array, w: number, h: number): number {
  const hist = new Uint32Array(256);
  const m = Math.floor(Math.min(w, h) * 0.01);
  for (let y = m; y < h - m; y++) {
    for (let x = m; x < w - m; x++) {
      const b = Math.min(255, Math.max(0, Math.round((d[y * w + x] ?? 0) * 255)));
      hist[b] = (hist[b] ?? 0) + 1;
    }
  }
  return extremeAt(hist, Math.max(12, Math.round(w * h * 0.00005))) / 255;
}

/**
 * Marks that cannot be the digit: the page edge, a shadow band, or squared paper's grid all run
 * into the image border over a long stretch; a digit touching the border (a tight crop) touches
 * it over a stroke width or two.
 */
function isEdgeArtifact(c: Component, w: number, h: number): boolean {
  if (c.edgeContact > 0.15 * Math.min(w, h)) return true;
  return c.maxX - c.minX + 1 >= 0.95 * w && c.maxY - c.minY + 1 >= 0.95 * h;
}

function gap(a: Box, c: Component): number {
  const dx = Math.max(0, a.minX - c.maxX, c.minX - a.maxX);
  const dy = Math.max(0, a.minY - c.maxY, c.minY - a.maxY);
  return Math.max(dx, dy);
}

interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

function extractDigit(d: Float32Array, w: number, h: number): Extracted {
  const level = inkLevel(d, w, h);
  if (level < MIN_CONTRAST) throw new UserError('image.no_ink', 'no ink-like mark found');

  // Coarse pass: half the ink level keeps faint grid lines and paper texture out.
  const t1 = 0.5 * level;
  const mask = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) mask[i] = (d[i] ?? 0) >= t1 ? 1 : 0;
  const { labels, components } = labelComponents(mask, w, h, d);
  const kept = components.filter((c) => c.area >= 4 && !isEdgeArtifact(c, w, h));
  if (kept.length === 0) throw new UserError('image.no_ink', 'only page edges or grid lines found');
  let main = kept[0] as Component;
  for (const c of kept) if (c.mass > main.mass) main = c;
  const significant = kept.filter((c) => c.area >= 0.05 * main.area);

  // Strokes lifted from the paper ('4', '5', '7' crossbars) are separate components nearby.
  const group = new Set<number>([main.label]);
  const box: Box = { minX: main.minX, minY: main.minY, maxX: main.maxX, maxY: main.maxY };
  for (let grew = true; grew;) {
    grew = false;
    const size = Math.max(box.maxX - box.minX, box.maxY - box.minY) + 1;
    for (const c of significant) {
      if (group.has(c.label) || gap(box, c) > 0.3 * size) continue;
      group.add(c.label);
      box.minX = Math.min(box.minX, c.minX);
      box.minY = Math.min(box.minY, c.minY);
      box.maxX = Math.max(box.maxX, c.maxX);
      box.maxY = Math.max(box.maxY, c.maxY);
      grew = true;
    }
  }

  // Fine pass in a region around the digit, where ink is a sizeable share of the pixels and
  // Otsu's threshold is meaningful; clamped so that grid lines still stay out.
  const size = Math.max(box.maxX - box.minX, box.maxY - box.minY) + 1;
  const margin = Math.ceil(0.1 * size) + 2;
  const rx0 = Math.max(0, box.minX - margin);
  const ry0 = Math.max(0, box.minY - margin);
  const rx1 = Math.min(w - 1, box.maxX + margin);
  const ry1 = Math.min(h - 1, box.maxY + margin);
  const rw = rx1 - rx0 + 1;
  const rh = ry1 - ry0 + 1;
  const hist = new Uint32Array(256);
  const inkHist = new Uint32Array(256);
  let inkCount = 0;
  for (let y = ry0; y <= ry1; y++) {
    for (let x = rx0; x <= rx1; x++) {
      const i = y * w + x;
      const b = Math.min(255, Math.max(0, Math.round((d[i] ?? 0) * 255)));
      hist[b] = (hist[b] ?? 0) + 1;
      if (group.has(labels[i] ?? 0)) {
        inkHist[b] = (inkHist[b] ?? 0) + 1;
        inkCount++;
      }
    }
  }
  const contrast = histogramQuantile(inkHist, inkCount, 0.9) / 255;
  const t2 = Math.min(0.6 * contrast, Math.max(0.35 * contrast, otsuThreshold(hist) / 255));
  const roiMask = new Uint8Array(rw * rh);
  for (let y = 0; y < rh; y++) {
    for (let x = 0; x < rw; x++)
      roiMask[y * rw + x] = (d[(y + ry0) * w + x + rx0] ?? 0) >= t2 ? 1 : 0;
  }
  const roi = labelComponents(roiMask, rw, rh);
  const keep = new Uint8Array(roi.components.length + 1);
  for (let y = 0; y < rh; y++) {
    for (let x = 0; x < rw; x++) {
      const l = roi.labels[y * rw + x] ?? 0;
      if (l && group.has(labels[(y + ry0) * w + x + rx0] ?? 0)) keep[l] = 1;
    }
  }
  let digit: Float32Array = new Float32Array(rw * rh);
  for (let i = 0; i < digit.length; i++) digit[i] = keep[roi.labels[i] ?? 0] ? 1 : 0;
  // roi label 0 is background: never kept.
  keep[0] = 0;
  for (let i = 0; i < digit.length; i++) if (!(roi.labels[i] ?? 0)) digit[i] = 0;

  const before = measure(digit, rw, rh);
  if (before.area === 0) throw new UserError('image.no_ink', 'no ink-like mark found');
  // Stroke thickness relative to the digit decides how it will look at 20 px: pen strokes on a
  // large photo would shrink to hairlines, marker strokes to blobs. Bring it near MNIST's.
  const scale = BOX / Math.max(before.bw, before.bh);
  const target = MNIST_STROKE / scale;
  let adjust = 0;
  if (before.stroke < 0.75 * target) {
    adjust = Math.max(1, Math.round((target - before.stroke) / 2));
    digit = squareExtremum({ data: digit, width: rw, height: rh }, adjust, true).data;
  } else if (before.stroke > 1.7 * target) {
    const r = Math.floor(Math.min((before.stroke - target) / 2, 0.3 * before.stroke));
    if (r >= 1) {
      const eroded = squareExtremum({ data: digit, width: rw, height: rh }, r, false).data;
      const after = measure(eroded, rw, rh);
      // Erosion must thin, not dismember: keep it only if the shape survives.
      if (
        after.area > 0.3 * before.area &&
        after.bh > 0.8 * before.bh &&
        after.bw > 0.6 * before.bw
      ) {
        digit = eroded;
        adjust = -r;
      }
    }
  }
  const m = measure(digit, rw, rh);
  const crop = new Float32Array(m.bw * m.bh);
  for (let y = 0; y < m.bh; y++) {
    for (let x = 0; x < m.bw; x++) crop[y * m.bw + x] = digit[(y + m.y0) * rw + x + m.x0] ?? 0;
  }
  return {
    mask: crop,
    maskWidth: m.bw,
    maskHeight: m.bh,
    x0: rx0 + m.x0,
    y0: ry0 + m.y0,
    bw: m.bw,
    bh: m.bh,
    area: before.area,
    components: significant.length,
    digitComponents: group.size,
    contrast,
    strokeWidth: before.stroke,
    strokeAdjust: adjust,
  };
}

/** Bounding box, area and stroke width (`2 * area / boundary pixels`) of a binary mask. */
function measure(m: Float32Array, w: number, h: number) {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  let boundary = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!(m[y * w + x] ?? 0)) continue;
      area++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (
        x === 0 ||
        y === 0 ||
        x === w - 1 ||
        y === h - 1 ||
        !m[y * w + x - 1] ||
        !m[y * w + x + 1] ||
        !m[(y - 1) * w + x] ||
        !m[(y + 1) * w + x]
      ) {
        boundary++;
      }
    }
  }
  if (area === 0) return { x0: 0, y0: 0, bw: 1, bh: 1, area: 0, stroke: 0 };
  return {
    x0,
    y0,
    bw: x1 - x0 + 1,
    bh: y1 - y0 + 1,
    area,
    stroke: (2 * area) / Math.max(1, boundary),
  };
}

/**
 * Area-weighted resampling of the binary digit into 28x28 (each output pixel averages the part
 * of the mask it covers, the anti-aliasing that gives MNIST its grey edges), scaled so the longer
 * side spans 20 px and offset so that the centre of mass lands on pixel (14, 14). The mapping is
 * linear, so the mass-weighted centre is known before resampling; one correction pass absorbs
 * the small discretisation error.
 */
function normaliseToMnist(mask: Float32Array, mw: number, mh: number): Float32Array {
  const s = BOX / Math.max(mw, mh);
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < mh; y++) {
    for (let x = 0; x < mw; x++) {
      const v = mask[y * mw + x] ?? 0;
      mass += v;
      cx += (x + 0.5) * v;
      cy += (y + 0.5) * v;
    }
  }
  cx /= mass;
  cy /= mass;
  let ox = CENTRE_INDEX + 0.5 - s * cx;
  let oy = CENTRE_INDEX + 0.5 - s * cy;
  let out = resample(mask, mw, mh, s, ox, oy);
  const com = centreOfMass(out);
  ox += CENTRE_INDEX - com.x;
  oy += CENTRE_INDEX - com.y;
  out = resample(mask, mw, mh, s, ox, oy);
  return out;
}

/** Index-space centre of mass of a 28x28 image. */
export function centreOfMass(img: Float32Array): { x: number; y: number } {
  let m = 0;
  let x = 0;
  let y = 0;
  for (let j = 0; j < DIGIT_SIZE; j++) {
    for (let i = 0; i < DIGIT_SIZE; i++) {
      const v = img[j * DIGIT_SIZE + i] ?? 0;
      m += v;
      x += i * v;
      y += j * v;
    }
  }
  return m > 0 ? { x: x / m, y: y / m } : { x: CENTRE_INDEX, y: CENTRE_INDEX };
}

/** Overlap weights of input cells `[k, k+1)` mapped by `o + s * k` with output cells. */
function axisWeights(
  n: number,
  s: number,
  o: number,
): { cell: Int32Array; weight: Float32Array; count: number } {
  const per = Math.ceil(s) + 2;
  const cell = new Int32Array(n * per).fill(-1);
  const weight = new Float32Array(n * per);
  for (let k = 0; k < n; k++) {
    const a = o + s * k;
    const b = a + s;
    let slot = 0;
    for (let c = Math.floor(a); c < b && slot < per; c++) {
      const ov = Math.min(b, c + 1) - Math.max(a, c);
      if (ov <= 0 || c < 0 || c >= DIGIT_SIZE) continue;
      cell[k * per + slot] = c;
      weight[k * per + slot] = ov;
      slot++;
    }
  }
  return { cell, weight, count: per };
}

function resample(
  mask: Float32Array,
  mw: number,
  mh: number,
  s: number,
  ox: number,
  oy: number,
): Float32Array {
  const wx = axisWeights(mw, s, ox);
  const wy = axisWeights(mh, s, oy);
  const rows = new Float32Array(mh * DIGIT_SIZE);
  for (let y = 0; y < mh; y++) {
    for (let x = 0; x < mw; x++) {
      const v = mask[y * mw + x] ?? 0;
      if (!v) continue;
      for (let k = 0; k < wx.count; k++) {
        const c = wx.cell[x * wx.count + k] ?? -1;
        if (c >= 0)
          rows[y * DIGIT_SIZE + c] =
            (rows[y * DIGIT_SIZE + c] ?? 0) + v * (wx.weight[x * wx.count + k] ?? 0);
      }
    }
  }
  const out = new Float32Array(DIGIT_SIZE * DIGIT_SIZE);
  for (let y = 0; y < mh; y++) {
    for (let k = 0; k < wy.count; k++) {
      const c = wy.cell[y * wy.count + k] ?? -1;
      if (c < 0) continue;
      const wgt = wy.weight[y * wy.count + k] ?? 0;
      for (let x = 0; x < DIGIT_SIZE; x++) {
        out[c * DIGIT_SIZE + x] =
          (out[c * DIGIT_SIZE + x] ?? 0) + wgt * (rows[y * DIGIT_SIZE + x] ?? 0);
      }
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i] ?? 0));
  return out;
}

/** Why a preprocessed image is unlikely to be one handwritten digit. */
export type ShapeWarning = 'wide' | 'fragmented' | 'cluttered';

/**
 * Shape-only reasons to doubt that an image holds one digit, independent of any model: a box much
 * wider than tall (a word: MNIST digits are at most about 1.3 times wider than tall), a digit made
 * of many pieces, or many separate marks in the picture. Complements the classifier's confidence.
 *
 * @example
 * digitShapeWarnings((await preprocessDigit(wordPhoto)).stats); // ['wide', 'fragmented', 'cluttered']
 */
export function digitShapeWarnings(stats: DigitStats): ShapeWarning[] {
  const warnings: ShapeWarning[] = [];
  if (stats.bboxAspect > 1.6) warnings.push('wide');
  if (stats.digitComponents > 4) warnings.push('fragmented');
  if (stats.components > 6) warnings.push('cluttered');
  return warnings;
}
