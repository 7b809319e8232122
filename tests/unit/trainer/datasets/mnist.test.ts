import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FASHION_MNIST_CLASS_NAMES,
  loadMnistLike,
} from '../../../../src/trainer/datasets/mnist.ts';
import {
  IDX_COUNTS,
  idxLabel,
  idxPixel,
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

/** No shared folder, no system folders: only the data folder under test counts. */
const isolated = { systemDirs: [] } as const;

let root: string;
let fx: DatasetFixtures;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mnist-test-'));
  fx = await makeDatasetFixtures(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadMnistLike', () => {
  it('loads the gzipped train split as [n, 28, 28] with its labels', async () => {
    const d = await loadMnistLike('mnist', 'train', fx.dataDir, isolated);

    expect(d).toMatchObject({ count: IDX_COUNTS.train, height: 28, width: 28, channels: 1 });
    expect(d.images.length).toBe(IDX_COUNTS.train * 28 * 28);
    expect(Array.from(d.labels)).toEqual([0, 1, 2, 3, 4].map((i) => idxLabel('train', i)));
    expect(d.labels[0]).toBe(5);
    expect(d.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('places pixel (row, col) of image i at (i * 28 + row) * 28 + col', async () => {
    const d = await loadMnistLike('mnist', 'test', fx.dataDir, isolated);

    for (const [i, r, c] of [
      [0, 0, 0],
      [1, 3, 27],
      [2, 27, 5],
    ] as const) {
      expect(d.images[(i * 28 + r) * 28 + c]).toBe(idxPixel('test', i, r, c));
    }
    expect(d.count).toBe(IDX_COUNTS.test);
  });

  it('reads uncompressed files and names the Fashion-MNIST classes', async () => {
    const d = await loadMnistLike('fashion-mnist', 'test', fx.dataDir, isolated);

    expect(d.count).toBe(IDX_COUNTS.test);
    expect(d.images[(2 * 28 + 10) * 28 + 11]).toBe(idxPixel('test', 2, 10, 11));
    expect(d.classNames).toEqual(FASHION_MNIST_CLASS_NAMES);
    expect(d.classNames[9]).toBe('Ankle boot');
  });

  it('falls back to $CNN_SHARED_DATA when the data folder has nothing', async () => {
    const d = await loadMnistLike('mnist', 'train', path.join(root, 'empty'), {
      sharedDataDir: fx.dataDir,
      systemDirs: [],
    });

    expect(d.count).toBe(IDX_COUNTS.train);
  });

  it('falls back to a system folder for Fashion-MNIST', async () => {
    const d = await loadMnistLike('fashion-mnist', 'train', path.join(root, 'empty'), {
      systemDirs: [path.join(fx.dataDir, 'fashion-mnist')],
    });

    expect(d.count).toBe(IDX_COUNTS.train);
  });

  it('reports a missing dataset in the data folder with the download command', async () => {
    const dataDir = path.join(root, 'empty');

    await expect(loadMnistLike('mnist', 'train', dataDir, isolated)).rejects.toMatchObject({
      id: 'dataset.missing',
      params: { path: path.join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz'), dataset: 'mnist' },
      message: expect.stringContaining('run `bin/cnn-classroom download mnist`') as unknown,
    });
  });

  it('reports a missing labels file of the test split', async () => {
    await expect(
      loadMnistLike('mnist', 'test', fx.mnist.missingTestLabels, isolated),
    ).rejects.toMatchObject({
      id: 'dataset.missing',
      params: { path: path.join(fx.mnist.missingTestLabels, 'mnist', 't10k-labels-idx1-ubyte.gz') },
    });
  });

  it('rejects labels fewer than images', async () => {
    const labels = path.join(fx.mnist.countMismatch, 'mnist', 'train-labels-idx1-ubyte.gz');

    await expect(
      loadMnistLike('mnist', 'train', fx.mnist.countMismatch, isolated),
    ).rejects.toMatchObject({
      id: 'dataset.corrupt',
      params: { path: labels, expected: 5, actual: 4 },
    });
  });

  it('rejects images that are not 28x28', async () => {
    await expect(
      loadMnistLike('mnist', 'train', fx.mnist.wrongImageSize, isolated),
    ).rejects.toMatchObject({
      id: 'dataset.corrupt',
      params: { expected: '28x28', actual: '14x14' },
    });
  });
});
