import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../../../src/trainer/datasets/load.ts';
import {
  CIFAR_RECORDS_PER_BATCH,
  IDX_COUNTS,
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

const options = { env: {}, systemDirs: [], recordsPerBatch: CIFAR_RECORDS_PER_BATCH } as const;

let root: string;
let fx: DatasetFixtures;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'load-test-'));
  fx = await makeDatasetFixtures(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadDataset', () => {
  it.each([
    ['mnist', IDX_COUNTS.test, [28, 28, 1]],
    ['fashion-mnist', IDX_COUNTS.test, [28, 28, 1]],
    ['cifar-10', CIFAR_RECORDS_PER_BATCH, [32, 32, 3]],
  ] as const)('loads %s by name', async (name, count, shape) => {
    const d = await loadDataset(name, 'test', fx.dataDir, options);

    expect([d.count, d.height, d.width, d.channels]).toEqual([count, ...shape]);
    expect(d.images.length).toBe(count * shape[0] * shape[1] * shape[2]);
  });
});
