import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HANDWRITING,
  SCRIPT_SKELETONS,
  SKELETONS,
  WIDE_HANDWRITING,
  drawHandwrittenDigit,
} from '../../../src/trainer/handwriting.ts';

/** Bounding box of the pixels above 0.5 and the centre of mass. */
function measure(img: Float32Array): { w: number; h: number; cx: number; cy: number } {
  let minX = 28;
  let maxX = -1;
  let minY = 28;
  let maxY = -1;
  let m = 0;
  let sx = 0;
  let sy = 0;
  img.forEach((v, i) => {
    const x = i % 28;
    const y = Math.floor(i / 28);
    m += v;
    sx += v * x;
    sy += v * y;
    if (v > 0.5) {
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  });
  return { w: maxX - minX + 1, h: maxY - minY + 1, cx: sx / m, cy: sy / m };
}

describe('drawHandwrittenDigit', () => {
  it('has several ways of writing every digit, among them closed-top 4s, flagged 1s, crossed 7s', () => {
    expect(SKELETONS).toHaveLength(10);
    for (const variants of SKELETONS) expect(variants.length).toBeGreaterThanOrEqual(2);
    expect(SKELETONS[1]!.length).toBeGreaterThanOrEqual(4);
    expect(SKELETONS[4]!.length).toBeGreaterThanOrEqual(4);
    expect(SKELETONS[7]!.length).toBeGreaterThanOrEqual(4);
    // Script: a 3 with a loop between its bows, a curved 7, an 8 in one self-crossing stroke.
    expect(SCRIPT_SKELETONS).toHaveLength(10);
    expect(SCRIPT_SKELETONS[3]).toHaveLength(1);
    expect(SCRIPT_SKELETONS[7]).toHaveLength(1);
    expect(SCRIPT_SKELETONS[8]!.some((s) => s.length === 1)).toBe(true);
  });

  it('draws the script skeletons only when asked: a one-stroke 8 has no separate loops', () => {
    const img = new Float32Array(784);
    const rng = seedrandom('s');
    for (let k = 0; k < 40; k++) {
      drawHandwrittenDigit(8, img, 28, rng, WIDE_HANDWRITING);
      const { w, h } = measure(img);
      expect(Math.max(w, h)).toBeGreaterThanOrEqual(17);
      expect(Math.min(...img)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...img)).toBeLessThanOrEqual(1);
    }
    const a = new Float32Array(784);
    const b = new Float32Array(784);
    drawHandwrittenDigit(3, a, 28, seedrandom('t'), WIDE_HANDWRITING);
    drawHandwrittenDigit(3, b, 28, seedrandom('t'), WIDE_HANDWRITING);
    expect(a).toEqual(b);
  });

  it('draws narrow digits at the narrow rate: a 0 about half as wide as tall', () => {
    const img = new Float32Array(784);
    const widths = (narrow: number): number[] => {
      const rng = seedrandom('p');
      return Array.from({ length: 20 }, () => {
        drawHandwrittenDigit(0, img, 28, rng, { ...DEFAULT_HANDWRITING, narrow });
        const { w, h } = measure(img);
        expect(h).toBeGreaterThanOrEqual(17);
        return w / h;
      });
    };
    const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
    // Width / height: 0.45..0.75 of 0.72..0.9 when narrow (plus the stroke), 0.75..1.25 of it otherwise.
    for (const r of widths(1)) expect(r).toBeLessThanOrEqual(0.8);
    expect(mean(widths(1))).toBeLessThan(0.6);
    for (const r of widths(0)) expect(r).toBeGreaterThan(0.5);
    expect(mean(widths(0))).toBeGreaterThan(0.75);
  });

  it('lets a skipping pen leave gaps: less ink, still in [0, 1], deterministic', () => {
    const base = { ...WIDE_HANDWRITING, skips: 0, brush: 0, narrow: 0 };
    const ink = (skips: number, seed: string): Float32Array => {
      const img = new Float32Array(784);
      drawHandwrittenDigit(8, img, 28, seedrandom(seed), { ...base, skips });
      return img;
    };
    let less = 0;
    for (let k = 0; k < 20; k++) {
      const whole = ink(0, `q${k}`);
      const broken = ink(1, `q${k}`);
      expect(Math.min(...broken)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...broken)).toBeLessThanOrEqual(1);
      const sum = (a: Float32Array): number => a.reduce((s, v) => s + v, 0);
      if (sum(broken) < sum(whole) * 0.97) less++;
    }
    // The same seed draws the same skeleton; the skipped segments cost ink in most draws.
    expect(less).toBeGreaterThanOrEqual(14);
    expect(ink(1, 'r')).toEqual(ink(1, 'r'));
  });

  it('normalises as MNIST: the larger side fills about 20 px, centre of mass at (14, 14)', () => {
    const rng = seedrandom('h');
    const img = new Float32Array(784);
    for (let k = 0; k < 100; k++) {
      drawHandwrittenDigit(k % 10, img, 28, rng);
      const { w, h, cx, cy } = measure(img);
      expect(Math.max(w, h)).toBeGreaterThanOrEqual(17);
      expect(Math.max(w, h)).toBeLessThanOrEqual(22);
      expect(Math.abs(cx - 14)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(cy - 14)).toBeLessThanOrEqual(0.5);
      expect(Math.min(...img)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...img)).toBeLessThanOrEqual(1);
    }
  });

  it('draws a 1 tall and narrow, a 0 wide', () => {
    const rng = seedrandom('i');
    const img = new Float32Array(784);
    drawHandwrittenDigit(0, img, 28, rng);
    expect(measure(img).w).toBeGreaterThan(12);
    for (let k = 0; k < 10; k++) {
      drawHandwrittenDigit(1, img, 28, rng);
      const { w, h } = measure(img);
      expect(h).toBeGreaterThanOrEqual(17);
      expect(w).toBeLessThan(h);
    }
  });

  it('is deterministic for a seed and refuses a digit outside 0..9', () => {
    const a = new Float32Array(784);
    const b = new Float32Array(784);
    drawHandwrittenDigit(5, a, 28, seedrandom('j'));
    drawHandwrittenDigit(5, b, 28, seedrandom('j'));
    expect(a).toEqual(b);
    expect(() => drawHandwrittenDigit(10, a, 28, seedrandom('j'))).toThrow(RangeError);
  });
});
