import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { augmentCropFlipBatch, augmentDigitBatch } from '../../../src/trainer/augment.ts';

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

describe('augmentCropFlipBatch', () => {
  const shape = { height: 8, width: 8, channels: 3 };
  // One marker pixel at (y 2, x 1) with channel values 10, 20, 30; everything else 100.
  const src = new Uint8Array(8 * 8 * 3).fill(100);
  src.set([10, 20, 30], (2 * 8 + 1) * 3);

  it('shifts by at most the padding, flips half the time, keeps channel order and pads with zeros', () => {
    const rng = seedrandom('crop');
    const out = new Float32Array(8 * 8 * 3);
    const shifts = new Set<string>();
    let flips = 0;
    const n = 400;
    for (let i = 0; i < n; i++) {
      augmentCropFlipBatch(src, shape, [0], out, rng, 2);
      let found: [number, number] | undefined;
      for (let p = 0; p < 64; p++) {
        if (Math.abs(out[p * 3]! - 10 / 255) < 1e-6) {
          expect([out[p * 3 + 1], out[p * 3 + 2]]).toEqual([20 / 255, 30 / 255].map(Math.fround));
          found = [Math.floor(p / 8), p % 8];
        }
        const v = out[p * 3]!;
        expect([0, Math.fround(100 / 255), Math.fround(10 / 255)]).toContain(v);
      }
      if (!found) continue; // the marker was cropped away
      const [y, x] = found;
      const dy = 2 - y;
      expect(Math.abs(dy)).toBeLessThanOrEqual(2);
      // Unflipped the marker lands at x = 1 - dx; flipped at 7 - 1 - dx.
      const flipped = Math.abs(6 - x) <= 2 && !(Math.abs(1 - x) <= 2 && x < 4);
      if (flipped) flips++;
      shifts.add(`${dy}`);
    }
    expect(shifts.size).toBe(5);
    expect(flips / n).toBeGreaterThan(0.35);
    expect(flips / n).toBeLessThan(0.65);
  });

  it('with no padding, gives the image or its mirror image', () => {
    const rng = seedrandom('mirror');
    const out = new Float32Array(8 * 8 * 3);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      augmentCropFlipBatch(src, shape, [0], out, rng, 0);
      const p = out.findIndex((v) => Math.abs(v - 10 / 255) < 1e-6) / 3;
      seen.add(p);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([2 * 8 + 1, 2 * 8 + 6]);
  });
});
