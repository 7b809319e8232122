import type { PRNG } from 'seedrandom';
import { drawSegment } from './handwriting.ts';

/**
 * Writing conventions that MNIST (American high-school students and Census employees) rarely
 * shows but the course's students use daily: the continental "1" with a flag at the top (and
 * sometimes a base), and the "7" with a crossbar. {@link addWritingVariant} draws them onto
 * MNIST digits of those classes during training, so a Russian student's 1 is not read as a 7.
 */
export interface VariantRates {
  /** Chance that a "1" gets a flag. */
  readonly oneFlag: number;
  /** Chance that a flagged "1" also gets a base. */
  readonly oneBase: number;
  /** Chance that a "7" gets a crossbar. */
  readonly sevenBar: number;
}

export const DEFAULT_VARIANT_RATES: VariantRates = { oneFlag: 0.35, oneBase: 0.3, sevenBar: 0.3 };

/** Ink box and the mean column of the ink in a given row band. */
function inkGeometry(
  img: Float32Array,
  size: number,
): { top: number; bottom: number; colAt: (y: number) => number } | undefined {
  let top = size;
  let bottom = -1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((img[y * size + x] ?? 0) > 0.5) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  if (bottom - top < 8) return undefined;
  const colAt = (yc: number): number => {
    let s = 0;
    let n = 0;
    for (
      let y = Math.max(0, Math.round(yc) - 1);
      y <= Math.min(size - 1, Math.round(yc) + 1);
      y++
    ) {
      for (let x = 0; x < size; x++) {
        const v = img[y * size + x] ?? 0;
        if (v > 0.5) {
          s += x * v;
          n += v;
        }
      }
    }
    return n > 0 ? s / n : size / 2;
  };
  return { top, bottom, colAt };
}

/**
 * Adds, with the given chances, a flag (and base) to a "1" or a crossbar to a "7", in place.
 * @param img float32 `[size, size]`, ink bright, values 0..1 (an augmented MNIST digit).
 * @param label its class.
 */
export function addWritingVariant(
  img: Float32Array,
  size: number,
  label: number,
  rng: PRNG,
  rates: VariantRates = DEFAULT_VARIANT_RATES,
): void {
  if (label !== 1 && label !== 7) return;
  const g = inkGeometry(img, size);
  if (!g) return;
  const h = g.bottom - g.top;
  const w = 1.6 + rng() * 1.2;
  if (label === 1 && rng() < rates.oneFlag) {
    const xt = g.colAt(g.top);
    const len = h * (0.25 + rng() * 0.2);
    const angle = ((25 + rng() * 30) * Math.PI) / 180;
    drawSegment(
      img,
      size,
      xt,
      g.top + 0.5,
      xt - len * Math.cos(angle),
      g.top + 0.5 + len * Math.sin(angle),
      w,
    );
    if (rng() < rates.oneBase) {
      const xb = g.colAt(g.bottom);
      const half = h * (0.2 + rng() * 0.1);
      drawSegment(img, size, xb - half, g.bottom, xb + half, g.bottom + (rng() - 0.5), w);
    }
  } else if (label === 7 && rng() < rates.sevenBar) {
    const yb = g.top + h * (0.45 + rng() * 0.15);
    const xc = g.colAt(yb);
    const half = h * (0.15 + rng() * 0.1);
    const tilt = (rng() - 0.5) * 2;
    drawSegment(img, size, xc - half, yb + tilt, xc + half, yb - tilt, w);
  }
}
