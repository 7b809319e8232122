import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { augmentDigitBatch } from '../../../src/trainer/augment.ts';

function square(size: number): Uint8Array {
  const img = new Uint8Array(size * size);
  for (let y = 10; y < 18; y++) for (let x = 10; x < 18; x++) img[y * size + x] = 255;
  return img;
}

describe('augmentDigitBatch', () => {
  it('is the identity with zero ranges', () => {
    const src = square(28);
    const out = new Float32Array(784);
    augmentDigitBatch(src, 28, [0], out, seedrandom('a'), {
      maxRotationDeg: 0,
      maxScale: 0,
      maxShear: 0,
      maxShiftPx: 0,
    });
    expect(Array.from(out).map((v) => Math.round(v * 255))).toEqual(Array.from(src));
  });

  it('moves ink by at most the shift and keeps its mass within the scale range', () => {
    const src = square(28);
    const out = new Float32Array(784 * 50);
    augmentDigitBatch(src, 28, new Array<number>(50).fill(0), out, seedrandom('b'));
    for (let k = 0; k < 50; k++) {
      let mass = 0;
      let cx = 0;
      let cy = 0;
      for (let i = 0; i < 784; i++) {
        const v = out[k * 784 + i]!;
        mass += v;
        cx += v * (i % 28);
        cy += v * Math.floor(i / 28);
      }
      expect(mass).toBeGreaterThan(64 * 0.7);
      expect(mass).toBeLessThan(64 * 1.35);
      expect(Math.abs(cx / mass - 13.5)).toBeLessThan(2.6);
      expect(Math.abs(cy / mass - 13.5)).toBeLessThan(2.6);
    }
  });

  it('gives the same batch for the same seed', () => {
    const src = square(28);
    const a = new Float32Array(784);
    const b = new Float32Array(784);
    augmentDigitBatch(src, 28, [0], a, seedrandom('c'));
    augmentDigitBatch(src, 28, [0], b, seedrandom('c'));
    expect(a).toEqual(b);
  });
});
