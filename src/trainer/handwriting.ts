import type { PRNG } from 'seedrandom';

/**
 * Synthetic handwritten digits drawn from stroke skeletons: the writing conventions that the 250
 * MNIST writers (American high-school students and Census employees) rarely show but students'
 * photos and handwriting fonts often do: 4s with a closed top and a foot serif, continental 1s
 * with a long flag and a base, crossed 7s and 7s with a short bar and a long stem, flat-topped
 * 3s, 5s with a separate top bar, 9s with a straight or a curved stem, brush strokes whose width
 * varies along the line. Each call jitters the skeleton's points, smooths them into curves
 * (Catmull-Rom) and draws them anti-aliased, normalised as MNIST is: fitted in a 20x20 box
 * keeping the aspect ratio, centred by mass in 28x28 (LeCun et al. 1998, section III.A).
 */

/** A stroke: points `[x, y]` in a unit box, y down, joined by a smooth curve. */
type Stroke = readonly (readonly [number, number])[];
/** One way of writing a digit: its strokes. */
type Skeleton = readonly Stroke[];

/** Points of an elliptic arc from angle `a0` to `a1` (degrees, 0 = right, 90 = down). */
function arc(
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  a0: number,
  a1: number,
  steps = 10,
): [number, number][] {
  const pts: [number, number][] = [];
  for (let i = 0; i <= steps; i++) {
    const a = ((a0 + ((a1 - a0) * i) / steps) * Math.PI) / 180;
    pts.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return pts;
}

/** A vertical figure of eight in one stroke, starting at the top right. */
function figureEight(steps = 24): [number, number][] {
  const pts: [number, number][] = [];
  for (let i = 0; i <= steps; i++) {
    const t = 0.35 + (2 * Math.PI * i) / steps;
    pts.push([0.5 + 0.42 * Math.sin(2 * t) * 0.9, 0.5 - 0.5 * Math.cos(t)]);
  }
  return pts;
}

/** The skeletons of each digit, several ways of writing it. */
export const SKELETONS: readonly (readonly Skeleton[])[] = [
  // 0: an oval, a rounder one, one with a small overlap at the top.
  [
    [arc(0.5, 0.5, 0.38, 0.5, -90, 270, 16)],
    [arc(0.5, 0.5, 0.45, 0.5, -100, 265, 16)],
    [arc(0.5, 0.5, 0.36, 0.5, -60, 310, 16)],
  ],
  // 1: a bar; with a short flag; a long continental flag; flag and base; serif font style.
  [
    [
      [
        [0.5, 0],
        [0.5, 1],
      ],
    ],
    [
      [
        [0.3, 0.22],
        [0.55, 0],
        [0.55, 1],
      ],
    ],
    [
      [
        [0.05, 0.45],
        [0.55, 0],
        [0.55, 1],
      ],
    ],
    [
      [
        [0.2, 0.3],
        [0.55, 0],
        [0.55, 1],
      ],
      [
        [0.2, 1],
        [0.9, 1],
      ],
    ],
    [
      [
        [0.15, 0.35],
        [0.6, 0],
        [0.6, 1],
      ],
      [
        [0.3, 1],
        [0.9, 1],
      ],
    ],
  ],
  // 2: curved neck and flat base; with a loop at the base; a Z-like 2.
  [
    [[...arc(0.5, 0.28, 0.38, 0.28, 200, 360, 8), [0.8, 0.45], [0.1, 1], [0.95, 1]]],
    [[...arc(0.5, 0.28, 0.38, 0.28, 190, 370, 8), [0.2, 0.9], [0.3, 0.8], [0.35, 0.95], [0.95, 1]]],
    [
      [
        [0.1, 0.1],
        [0.55, 0],
        [0.85, 0.2],
        [0.1, 1],
        [0.9, 0.98],
      ],
    ],
  ],
  // 3: two bows; a flat top; a 3 written as two separate bows.
  [
    [[...arc(0.45, 0.25, 0.4, 0.25, 200, 450, 8), ...arc(0.45, 0.73, 0.45, 0.27, -90, 160, 8)]],
    [[[0.1, 0], [0.85, 0], [0.4, 0.42], ...arc(0.45, 0.7, 0.45, 0.3, -80, 160, 8)]],
    [arc(0.45, 0.25, 0.38, 0.25, 200, 450, 8), arc(0.45, 0.73, 0.45, 0.27, -90, 160, 8)],
  ],
  // 4: open (one stroke and a stem); two strokes open top; closed top; closed top with a serif.
  [
    [
      [
        [0.55, 0],
        [0.05, 0.68],
        [0.95, 0.68],
      ],
      [
        [0.72, 0.3],
        [0.72, 1],
      ],
    ],
    [
      [
        [0.12, 0],
        [0.08, 0.6],
        [0.92, 0.6],
      ],
      [
        [0.75, 0],
        [0.75, 1],
      ],
    ],
    [
      [
        [0.68, 1],
        [0.68, 0],
        [0.02, 0.7],
        [0.98, 0.7],
      ],
    ],
    [
      [
        [0.66, 1],
        [0.66, 0],
        [0.02, 0.68],
        [0.98, 0.68],
      ],
      [
        [0.45, 1],
        [0.88, 1],
      ],
    ],
  ],
  // 5: one stroke; a separate top bar; a round belly.
  [
    [[[0.85, 0], [0.22, 0], [0.17, 0.45], ...arc(0.5, 0.7, 0.4, 0.3, -120, 150, 10)]],
    [
      [[0.22, 0.02], [0.17, 0.45], ...arc(0.5, 0.7, 0.42, 0.3, -120, 150, 10)],
      [
        [0.22, 0],
        [0.9, -0.02],
      ],
    ],
    [[[0.8, 0], [0.25, 0.02], [0.2, 0.4], ...arc(0.48, 0.68, 0.44, 0.32, -110, 140, 10)]],
  ],
  // 6: a curl into a loop; a straighter back.
  [
    [[[0.78, 0], [0.35, 0.3], [0.12, 0.7], ...arc(0.48, 0.72, 0.36, 0.28, 180, 520, 12)]],
    [[[0.6, 0], [0.2, 0.55], ...arc(0.5, 0.73, 0.33, 0.27, 190, 530, 12)]],
  ],
  // 7: plain; crossed; a hook at the start; a short bar and a long, steep stem.
  [
    [
      [
        [0.05, 0],
        [0.95, 0],
        [0.35, 1],
      ],
    ],
    [
      [
        [0.05, 0],
        [0.95, 0],
        [0.4, 1],
      ],
      [
        [0.3, 0.5],
        [0.85, 0.5],
      ],
    ],
    [
      [
        [0.05, 0.18],
        [0.08, 0],
        [0.92, 0],
        [0.4, 1],
      ],
    ],
    [
      [
        [0.25, 0.02],
        [0.85, 0],
        [0.62, 1],
      ],
    ],
  ],
  // 8: two loops, the lower one larger; two loops of about the same size.
  [
    [arc(0.5, 0.24, 0.3, 0.24, 0, 360, 12), arc(0.5, 0.73, 0.38, 0.27, -90, 270, 12)],
    [arc(0.5, 0.26, 0.33, 0.26, 90, 450, 12), arc(0.5, 0.74, 0.35, 0.26, -90, 270, 12)],
  ],
  // 9: a loop and a straight stem; a curved stem; a stem from a closed loop.
  [
    [
      arc(0.5, 0.27, 0.38, 0.27, 0, 360, 12),
      [
        [0.88, 0.25],
        [0.85, 1],
      ],
    ],
    [[...arc(0.5, 0.28, 0.38, 0.28, -10, 350, 12), [0.85, 0.6], [0.55, 1]]],
    [[...arc(0.48, 0.28, 0.36, 0.28, 20, 380, 12), [0.78, 1]]],
  ],
];

/**
 * Script (cursive) ways of writing, drawn only with `scriptSkeletons` (`WIDE_HANDWRITING`): a 3
 * with a small loop where its bows meet, a 7 whose long stroke curves down from the bar, an 8 in
 * one stroke crossing itself.
 */
export const SCRIPT_SKELETONS: readonly (readonly Skeleton[])[] = [
  [],
  [],
  [],
  [
    [
      [
        ...arc(0.45, 0.24, 0.38, 0.24, 200, 420, 8),
        [0.35, 0.52],
        [0.3, 0.44],
        [0.45, 0.46],
        ...arc(0.45, 0.73, 0.45, 0.27, -80, 160, 8),
      ],
    ],
  ],
  [],
  [],
  [],
  [
    [
      [
        [0.05, 0.08],
        [0.5, 0.02],
        [0.95, 0],
        [0.62, 0.4],
        [0.45, 0.75],
        [0.4, 1],
      ],
    ],
  ],
  [[figureEight()]],
  [],
];

/** Catmull-Rom spline through `pts`, `sub` points per span. */
function smooth(pts: readonly (readonly [number, number])[], sub: number): [number, number][] {
  if (pts.length < 3) return pts.map(([x, y]) => [x, y]);
  const out: [number, number][] = [];
  for (let i = 0; i < pts.length - 1; i++) {
    const p0 = pts[Math.max(0, i - 1)]!;
    const p1 = pts[i]!;
    const p2 = pts[i + 1]!;
    const p3 = pts[Math.min(pts.length - 1, i + 2)]!;
    for (let s = 0; s < sub; s++) {
      const t = s / sub;
      const t2 = t * t;
      const t3 = t2 * t;
      const f = (a: number, b: number, c: number, d: number): number =>
        0.5 *
        (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (3 * b - a - 3 * c + d) * t3);
      out.push([f(p0[0], p1[0], p2[0], p3[0]), f(p0[1], p1[1], p2[1], p3[1])]);
    }
  }
  const last = pts[pts.length - 1]!;
  out.push([last[0], last[1]]);
  return out;
}

/** Anti-aliased round-capped segment of width `w` px, keeping the brighter value. */
export function drawSegment(
  img: Float32Array,
  size: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  w: number,
): void {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy || 1;
  const pad = Math.ceil(w) + 1;
  const minX = Math.max(0, Math.floor(Math.min(x0, x1)) - pad);
  const maxX = Math.min(size - 1, Math.ceil(Math.max(x0, x1)) + pad);
  const minY = Math.max(0, Math.floor(Math.min(y0, y1)) - pad);
  const maxY = Math.min(size - 1, Math.ceil(Math.max(y0, y1)) + pad);
  for (let y = minY; y <= maxY; y++) {
    for (let x = minX; x <= maxX; x++) {
      const t = Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / len2));
      const d = Math.hypot(x - (x0 + t * dx), y - (y0 + t * dy));
      const v = Math.max(0, Math.min(1, w / 2 + 0.5 - d));
      const i = y * size + x;
      if (v > (img[i] ?? 0)) img[i] = v;
    }
  }
}

/** Options of {@link drawHandwrittenDigit}. */
export interface HandwritingOptions {
  /** Stroke width range at 28x28, pixels (MNIST's median is about 2.6). */
  readonly minWidth: number;
  readonly maxWidth: number;
  /** Largest random shift of a skeleton point, share of the box. */
  readonly jitter: number;
  /** Chance of a narrow digit (width 0.45..0.75 of the usual), as in condensed, looped hands. */
  readonly narrow: number;
  /**
   * Chance of a brush stroke, and the range of the relative change of its width along the line
   * (one value when the two are equal).
   */
  readonly brush: number;
  readonly minBrushAmplitude: number;
  readonly brushAmplitude: number;
  /** Chance that the pen skips: a few short gaps in the strokes (a dry ballpoint, sketchy hands). */
  readonly skips: number;
  /** Draw the {@link SCRIPT_SKELETONS} too. */
  readonly scriptSkeletons: boolean;
}

/** The handwriting of the shipped `digits-photo` (a chance of 0 draws no random number). */
export const DEFAULT_HANDWRITING: HandwritingOptions = {
  minWidth: 1.6,
  maxWidth: 3.6,
  jitter: 0.05,
  narrow: 0,
  brush: 0.3,
  minBrushAmplitude: 0.5,
  brushAmplitude: 0.5,
  skips: 0,
  scriptSkeletons: false,
};

/**
 * Wider handwriting, measured in docs/models.md ("wider augmentation"): hairline to marker
 * widths, narrow digits, stronger brushes, a skipping pen, the script skeletons.
 */
export const WIDE_HANDWRITING: HandwritingOptions = {
  minWidth: 1.2,
  maxWidth: 4.2,
  jitter: 0.05,
  narrow: 0.15,
  brush: 0.3,
  minBrushAmplitude: 0.21,
  brushAmplitude: 0.7,
  skips: 0.1,
  scriptSkeletons: true,
};

/**
 * Draws a synthetic handwritten `digit` into `out` (float32 `[size, size]`, ink 1 on 0, values
 * in [0, 1], overwritten), normalised as MNIST: fitted in a `20/28 * size` box keeping its aspect
 * ratio, centre of mass moved to the centre pixel. A random skeleton of {@link SKELETONS} is
 * jittered, smoothed and drawn with a stroke width that may vary along the line (a brush).
 *
 * @param digit 0..9.
 * @throws {RangeError} for a digit outside 0..9.
 */
export function drawHandwrittenDigit(
  digit: number,
  out: Float32Array,
  size: number,
  rng: PRNG,
  opt: HandwritingOptions = DEFAULT_HANDWRITING,
): void {
  const plain = SKELETONS[digit];
  if (!plain) throw new RangeError(`no skeleton for digit ${digit}`);
  const variants = opt.scriptSkeletons ? [...plain, ...(SCRIPT_SKELETONS[digit] ?? [])] : plain;
  const skeleton = variants[Math.floor(rng() * variants.length)]!;
  const j = (): number => (rng() * 2 - 1) * opt.jitter;
  const aspect = opt.narrow > 0 && rng() < opt.narrow ? 0.45 + rng() * 0.3 : 0.75 + rng() * 0.5;
  const strokes = skeleton.map((s) =>
    smooth(
      s.map(([x, y]) => [x * aspect + j(), y + j()] as const),
      4,
    ),
  );
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const s of strokes) {
    for (const [x, y] of s) {
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  }
  const box = (20 / 28) * size;
  const w = opt.minWidth + rng() * (opt.maxWidth - opt.minWidth);
  const brushRange = opt.brushAmplitude - opt.minBrushAmplitude;
  const brush =
    rng() < opt.brush ? opt.minBrushAmplitude + (brushRange > 0 ? rng() * brushRange : 0) : 0;
  const skip = opt.skips > 0 && rng() < opt.skips ? 0.06 + rng() * 0.08 : 0;
  // Fit the skeleton's centre line so the drawn ink (half a stroke wider) fits the box.
  const scale = (box - w) / Math.max(maxX - minX, maxY - minY, 1e-3);
  const ox = size / 2 - ((minX + maxX) / 2) * scale;
  const oy = size / 2 - ((minY + maxY) / 2) * scale;
  out.fill(0);
  for (const s of strokes) {
    const phase = rng() * Math.PI * 2;
    // A skipping pen lifts now and then (never on the first or last segment) for a gap as
    // long as the stroke is wide plus 1..3 px, so the round caps do not close it.
    let gap = 0;
    for (let i = 0; i + 1 < s.length; i++) {
      const [ax, ay] = s[i]!;
      const [bx, by] = s[i + 1]!;
      if (gap <= 0 && skip > 0 && i > 0 && i + 2 < s.length && rng() < skip) {
        gap = w + 1 + rng() * 2;
      }
      if (gap > 0) {
        gap -= Math.hypot(bx - ax, by - ay) * scale;
        continue;
      }
      const width = w * (1 + brush * Math.sin(phase + i * 0.35));
      drawSegment(
        out,
        size,
        ax * scale + ox,
        ay * scale + oy,
        bx * scale + ox,
        by * scale + oy,
        width,
      );
    }
  }
  centreByMass(out, size);
}

/** Moves the image's centre of mass to the centre pixel by a whole-pixel shift, in place. */
function centreByMass(img: Float32Array, size: number): void {
  let m = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = img[y * size + x] ?? 0;
      m += v;
      sx += v * x;
      sy += v * y;
    }
  }
  if (m === 0) return;
  const dx = Math.round(size / 2 - sx / m);
  const dy = Math.round(size / 2 - sy / m);
  if (dx === 0 && dy === 0) return;
  const copy = img.slice();
  img.fill(0);
  for (let y = 0; y < size; y++) {
    const ty = y + dy;
    if (ty < 0 || ty >= size) continue;
    for (let x = 0; x < size; x++) {
      const tx = x + dx;
      if (tx >= 0 && tx < size) img[ty * size + tx] = copy[y * size + x] ?? 0;
    }
  }
}
