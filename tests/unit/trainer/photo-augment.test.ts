import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PHOTO_AUGMENT,
  WIDE_PHOTO_AUGMENT,
  breakStrokes,
  degradeDigit,
  morph,
  photoDigitFiller,
  warpDigit,
  type PhotoAugmentOptions,
} from '../../../src/trainer/photo-augment.ts';
import type { LabelledImages } from '../../../src/trainer/train.ts';
import { DEFAULT_HANDWRITING } from '../../../src/trainer/handwriting.ts';

/** An 8x8 bright square in the middle of a 28x28 image, float [0, 1]. */
function square(): Float32Array {
  const img = new Float32Array(784);
  for (let y = 10; y < 18; y++) for (let x = 10; x < 18; x++) img[y * 28 + x] = 1;
  return img;
}

const sum = (a: Float32Array): number => a.reduce((s, v) => s + v, 0);

const NONE: PhotoAugmentOptions = {
  synthetic: 0,
  handwriting: DEFAULT_HANDWRITING,
  maxRotationDeg: 0,
  commonRotationDeg: 0,
  maxShear: 0,
  steepShear: 0,
  maxScale: 0,
  maxAspect: 0,
  maxShiftPx: 0,
  elastic: 0,
  elasticPx: 0,
  thicken: 0,
  thin: 0,
  hollow: 0,
  hollowWide: 0,
  lowRes: 0,
  grain: 0,
  gridLine: 0,
  breaks: 0,
};

describe('warpDigit', () => {
  it('is the identity with zero ranges', () => {
    const src = square();
    const dst = new Float32Array(784);
    warpDigit(src, dst, 28, seedrandom('a'), NONE);
    expect(Array.from(dst)).toEqual(Array.from(src));
  });

  it('keeps the ink near the centre and its mass within the scale range, elastic included', () => {
    const src = square();
    const dst = new Float32Array(784);
    const rng = seedrandom('b');
    for (let k = 0; k < 50; k++) {
      warpDigit(src, dst, 28, rng, { ...DEFAULT_PHOTO_AUGMENT, elastic: 1 });
      const mass = sum(dst);
      let cx = 0;
      let cy = 0;
      dst.forEach((v, i) => {
        cx += v * (i % 28);
        cy += v * Math.floor(i / 28);
      });
      expect(mass).toBeGreaterThan(64 * 0.6);
      expect(mass).toBeLessThan(64 * 1.9);
      expect(Math.abs(cx / mass - 13.5)).toBeLessThan(4);
      expect(Math.abs(cy / mass - 13.5)).toBeLessThan(4);
    }
  });

  it('rotates by up to 30 degrees: a horizontal bar can come out visibly tilted', () => {
    const bar = new Float32Array(784);
    for (let x = 4; x < 24; x++) bar[14 * 28 + x] = 1;
    const dst = new Float32Array(784);
    const rng = seedrandom('c');
    let steepest = 0;
    for (let k = 0; k < 200; k++) {
      warpDigit(bar, dst, 28, rng, { ...NONE, maxRotationDeg: 30, commonRotationDeg: 30 });
      // Rows touched by the bar: 1 when flat, about 20 * sin(30 deg) = 10 at 30 degrees.
      const rows = new Set<number>();
      dst.forEach((v, i) => {
        if (v > 0.5) rows.add(Math.floor(i / 28));
      });
      steepest = Math.max(steepest, rows.size);
    }
    expect(steepest).toBeGreaterThanOrEqual(8);
    expect(steepest).toBeLessThanOrEqual(12);
  });
});

describe('morph', () => {
  it('dilation grows an 8x8 square to the 10x10 cross shape, erosion shrinks it to 6x6', () => {
    const src = square();
    const out = new Float32Array(784);
    morph(src, out, 28, 'dilate');
    expect(sum(out)).toBe(64 + 4 * 8);
    morph(src, out, 28, 'erode');
    expect(sum(out)).toBe(36);
  });
});

describe('degradeDigit', () => {
  it('outlines the stroke when hollow: the middle of a broad stroke is empty', () => {
    const img = square();
    degradeDigit(img, new Float32Array(784), 28, seedrandom('d'), { ...NONE, hollow: 1 });
    expect(img[14 * 28 + 14]).toBe(0);
    expect(img[9 * 28 + 14]).toBe(1);
    expect(img[8 * 28 + 14]).toBe(1);
  });

  it('outlines thin-walled around a broadened stroke when hollowWide: a 1 px rim, empty inside', () => {
    const img = square();
    degradeDigit(img, new Float32Array(784), 28, seedrandom('d'), {
      ...NONE,
      hollow: 1,
      hollowWide: 1,
    });
    // The square (rows and columns 10..17) broadened by one pixel is the gap, 9..18 in the middle.
    for (let y = 9; y <= 18; y++) expect(img[y * 28 + 14]).toBe(0);
    expect(img[8 * 28 + 14]).toBe(1);
    expect(img[19 * 28 + 14]).toBe(1);
    expect(img[14 * 28 + 8]).toBe(1);
    expect(img[7 * 28 + 14]).toBe(0);
    expect(Math.max(...img)).toBe(1);
  });

  it('keeps every value in [0, 1] under all degradations', () => {
    const rng = seedrandom('e');
    const all: PhotoAugmentOptions = {
      ...NONE,
      thicken: 0.3,
      hollow: 0.3,
      hollowWide: 0.5,
      breaks: 0.5,
      lowRes: 1,
      grain: 1,
      gridLine: 1,
    };
    for (let k = 0; k < 20; k++) {
      const img = square();
      degradeDigit(img, new Float32Array(784), 28, rng, all);
      expect(Math.min(...img)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...img)).toBeLessThanOrEqual(1);
      expect(sum(img)).toBeGreaterThan(10);
    }
  });
});

describe('breakStrokes', () => {
  /** A vertical bar 2 px wide, rows 4..23, float [0, 1]. */
  function bar(): Float32Array {
    const img = new Float32Array(784);
    for (let y = 4; y < 24; y++) for (let x = 13; x < 15; x++) img[y * 28 + x] = 1;
    return img;
  }
  /** Rows of the bar left with no ink above 0.5: the gaps across the stroke. */
  const emptyRows = (img: Float32Array): number => {
    let n = 0;
    for (let y = 4; y < 24; y++) if (img[y * 28 + 13]! <= 0.5 && img[y * 28 + 14]! <= 0.5) n++;
    return n;
  };

  it('cuts gaps across the stroke, only removes ink, keeps values in [0, 1]', () => {
    const rng = seedrandom('k');
    for (let k = 0; k < 30; k++) {
      const img = bar();
      const before = bar();
      breakStrokes(img, 28, 2, rng);
      const gaps = emptyRows(img);
      // Two discs of radius 1..1.8 cut at least one row and at most 2 x 4 rows.
      expect(gaps).toBeGreaterThanOrEqual(1);
      expect(gaps).toBeLessThanOrEqual(8);
      img.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(before[i]!);
      });
      expect(sum(img)).toBeGreaterThan(20);
    }
  });

  it('is deterministic for a seed and leaves an image without ink alone', () => {
    const a = bar();
    const b = bar();
    breakStrokes(a, 28, 3, seedrandom('l'));
    breakStrokes(b, 28, 3, seedrandom('l'));
    expect(a).toEqual(b);
    const c = bar();
    breakStrokes(c, 28, 3, seedrandom('m'));
    expect(c).not.toEqual(a);
    const empty = new Float32Array(784);
    breakStrokes(empty, 28, 3, seedrandom('l'));
    expect(sum(empty)).toBe(0);
  });

  it('runs inside degradeDigit at the breaks rate', () => {
    const img = bar();
    degradeDigit(img, new Float32Array(784), 28, seedrandom('n'), { ...NONE, breaks: 1 });
    expect(emptyRows(img)).toBeGreaterThanOrEqual(1);
    const kept = bar();
    degradeDigit(kept, new Float32Array(784), 28, seedrandom('n'), NONE);
    expect(kept).toEqual(bar());
  });
});

describe('warpDigit slant', () => {
  it('slants a vertical bar by up to 30 degrees, the steep share from the whole range', () => {
    const bar = new Float32Array(784);
    for (let y = 4; y < 24; y++) bar[y * 28 + 14] = 1;
    const dst = new Float32Array(784);
    /** Columns touched by the bar: 1 when upright, about 20 * tan(30 deg) = 11.5 at 30 degrees. */
    const widest = (steepShear: number): number => {
      const rng = seedrandom('o');
      let most = 0;
      for (let k = 0; k < 200; k++) {
        warpDigit(bar, dst, 28, rng, { ...NONE, maxShear: 0.58, steepShear });
        const cols = new Set<number>();
        dst.forEach((v, i) => {
          if (v > 0.3) cols.add(i % 28);
        });
        most = Math.max(most, cols.size);
      }
      return most;
    };
    expect(widest(1)).toBeGreaterThanOrEqual(10);
    expect(widest(1)).toBeLessThanOrEqual(14);
    // Within half the range only: at most about 20 * 0.29 = 5.8 columns, plus sampling blur.
    expect(widest(0)).toBeLessThanOrEqual(8);
  });
});

describe('photoDigitFiller', () => {
  const data: LabelledImages = {
    images: Uint8Array.from(square(), (v) => v * 255),
    labels: Uint8Array.of(4),
    count: 1,
    height: 28,
    width: 28,
    channels: 1,
  };

  it('fills [n, 28, 28, 1] with values in [0, 1], the same for the same seed, without tensors', () => {
    const before = tf.memory().numTensors;
    const fill = photoDigitFiller(data);
    const a = new Float32Array(16 * 784);
    const b = new Float32Array(16 * 784);
    fill(new Array<number>(16).fill(0), a, seedrandom('f'));
    photoDigitFiller(data)(new Array<number>(16).fill(0), b, seedrandom('f'));
    expect(a).toEqual(b);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    for (let k = 0; k < 16; k++)
      expect(sum(a.subarray(k * 784, (k + 1) * 784))).toBeGreaterThan(10);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the wide augmentation fills valid samples too, deterministically', () => {
    const fill = photoDigitFiller(data, WIDE_PHOTO_AUGMENT);
    const a = new Float32Array(32 * 784);
    const b = new Float32Array(32 * 784);
    fill(new Array<number>(32).fill(0), a, seedrandom('w'));
    photoDigitFiller(data, WIDE_PHOTO_AUGMENT)(new Array<number>(32).fill(0), b, seedrandom('w'));
    expect(a).toEqual(b);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    const c = new Float32Array(32 * 784);
    photoDigitFiller(data)(new Array<number>(32).fill(0), c, seedrandom('w'));
    expect(c).not.toEqual(a);
  });

  it('replaces samples by synthetic digits of the same class at the synthetic rate', () => {
    const out = new Float32Array(784);
    photoDigitFiller(data, { ...NONE, synthetic: 1 })([0], out, seedrandom('g'));
    // A synthetic 4, not the square: ink outside the square's rows and columns.
    let outside = 0;
    out.forEach((v, i) => {
      const x = i % 28;
      const y = Math.floor(i / 28);
      if (x < 10 || x >= 18 || y < 10 || y >= 18) outside += v;
    });
    expect(outside).toBeGreaterThan(20);
    const plain = new Float32Array(784);
    photoDigitFiller(data, NONE)([0], plain, seedrandom('g'));
    expect(Array.from(plain)).toEqual(Array.from(square()));
  });
});
