import { describe, expect, it } from 'vitest';
import { etaSeconds } from '../../../src/jobs/protocol.ts';

describe('etaSeconds', () => {
  it('projects the pace of the timed batches onto the batches left', () => {
    // 100 of 750 batches in 10 s since the first epoch began: 650 left at 0.1 s each.
    expect(etaSeconds(100, 750, 100, 10_000)).toBe(65);
    // Second epoch of two: 900 of 1,500 done, the last 300 timed over 60 s.
    expect(etaSeconds(900, 1500, 300, 60_000)).toBe(120);
  });

  it('is 0 at the end and never negative; no batch timed yet counts as one', () => {
    expect(etaSeconds(750, 750, 750, 75_000)).toBe(0);
    expect(etaSeconds(800, 750, 10, 1000)).toBe(0);
    expect(etaSeconds(1, 10, 0, 500)).toBe(5);
  });
});
