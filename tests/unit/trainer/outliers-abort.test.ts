import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDigitOutliers } from '../../../src/trainer/outliers.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'outliers-abort-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('buildDigitOutliers and Ctrl-C', () => {
  it('stops at its next step once the signal is aborted (a missing data set would be skipped, not abort it)', async () => {
    await expect(
      buildDigitOutliers(path.join(root, 'none'), 10, 2, {}, AbortSignal.abort()),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });
});
