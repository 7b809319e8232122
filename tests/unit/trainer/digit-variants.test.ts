import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { addWritingVariant } from '../../../src/trainer/digit-variants.ts';

/** A vertical "1" stroke, columns 13-14, rows 4-23. */
function one(): Float32Array {
  const img = new Float32Array(784);
  for (let y = 4; y < 24; y++) {
    img[y * 28 + 13] = 1;
    img[y * 28 + 14] = 1;
  }
  return img;
}

const always = { oneFlag: 1, oneBase: 0, sevenBar: 1 };

function mass(img: Float32Array, x0: number, x1: number, y0: number, y1: number): number {
  let s = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += img[y * 28 + x]!;
  return s;
}

describe('addWritingVariant', () => {
  it('adds a flag going down-left from the top of a 1', () => {
    const img = one();
    addWritingVariant(img, 28, 1, seedrandom('f'), always);
    expect(mass(img, 0, 12, 4, 14)).toBeGreaterThan(3);
    // Nothing right of the stem, nothing in the lower half apart from the stem.
    expect(mass(img, 16, 28, 0, 28)).toBe(0);
    expect(mass(img, 0, 12, 16, 28)).toBe(0);
  });

  it('adds a crossbar across the middle of a 7 and leaves other digits alone', () => {
    const seven = one();
    addWritingVariant(seven, 28, 7, seedrandom('s'), always);
    expect(mass(seven, 0, 12, 10, 19)).toBeGreaterThan(1);
    expect(mass(seven, 16, 28, 10, 19)).toBeGreaterThan(1);
    const three = one();
    addWritingVariant(three, 28, 3, seedrandom('s'), always);
    expect(three).toEqual(one());
  });

  it('keeps values in [0, 1]', () => {
    const img = one();
    addWritingVariant(img, 28, 1, seedrandom('r'), { oneFlag: 1, oneBase: 1, sevenBar: 1 });
    for (const v of img) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
  });
});
