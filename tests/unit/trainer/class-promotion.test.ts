/** issue 16: the class rule of promotion at its edges. */
import { describe, expect, it } from 'vitest';
import { classPromotion } from '../../../src/trainer/class-finetune.ts';

const at = (classHeldOut: number, mnistTest: number) => ({ classHeldOut, mnistTest });

describe('classPromotion (held-out must improve, MNIST may drop at most 0.5 points)', () => {
  it.each([
    ['improves, MNIST unchanged', at(0.9, 0.991), at(0.95, 0.991), true, 'improved'],
    ['improves, MNIST rises', at(0.9, 0.991), at(0.95, 0.993), true, 'improved'],
    // 0.991 - 0.986 is 0.00499999... in binary floating point: exactly half a point is allowed.
    ['improves, MNIST drops exactly 0.5 points', at(0.9, 0.991), at(0.95, 0.986), true, 'improved'],
    ['improves by one photo of 60', at(58 / 60, 0.99), at(59 / 60, 0.99), true, 'improved'],
    ['improves, MNIST drops 0.51 points', at(0.9, 0.991), at(0.95, 0.9859), false, 'mnist-dropped'],
    ['equal held-out, MNIST rises', at(0.95, 0.99), at(0.95, 0.995), false, 'class-not-improved'],
    ['equal held-out at 100 %', at(1, 0.99), at(1, 0.99), false, 'class-not-improved'],
    ['held-out falls', at(0.95, 0.99), at(0.9, 0.99), false, 'class-not-improved'],
    [
      'held-out falls and MNIST drops (the class reason first)',
      at(0.95, 0.99),
      at(0.9, 0.95),
      false,
      'class-not-improved',
    ],
  ] as const)('%s', (_name, before, after, promote, reason) => {
    expect(classPromotion(before, after, 0.005)).toEqual({ promote, reason });
  });

  it('drops of exactly the allowed size pass at other sizes too, a hair more does not', () => {
    for (const [before, drop] of [
      [0.9912, 0.005],
      [0.9877, 0.005],
      [0.99, 0.01],
      [0.9731, 0.002],
    ] as const) {
      expect(classPromotion(at(0.5, before), at(0.6, before - drop), drop).promote).toBe(true);
      expect(classPromotion(at(0.5, before), at(0.6, before - drop - 1e-4), drop).promote).toBe(
        false,
      );
    }
  });
});
