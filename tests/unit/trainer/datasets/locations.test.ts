import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findIdxFile,
  resolveDatasetDir,
  SYSTEM_DATASET_DIRS,
} from '../../../../src/trainer/datasets/locations.ts';
import {
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

let root: string;
let fx: DatasetFixtures;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'locations-test-'));
  fx = await makeDatasetFixtures(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('resolveDatasetDir', () => {
  it('prefers the data folder over the shared and system folders', async () => {
    const dir = await resolveDatasetDir('mnist', fx.dataDir, {
      sharedDataDir: fx.mnist.countMismatch,
      systemDirs: [path.join(fx.dataDir, 'fashion-mnist')],
    });

    expect(dir).toBe(path.join(fx.dataDir, 'mnist'));
  });

  it('uses $CNN_SHARED_DATA/<name> before the system folders', async () => {
    const dir = await resolveDatasetDir('fashion-mnist', path.join(root, 'empty'), {
      sharedDataDir: fx.dataDir,
      systemDirs: [path.join(fx.mnist.countMismatch, 'mnist')],
    });

    expect(dir).toBe(path.join(fx.dataDir, 'fashion-mnist'));
  });

  it('skips a folder missing one of the four IDX files', async () => {
    const dir = await resolveDatasetDir('mnist', fx.mnist.missingTestLabels, {
      sharedDataDir: fx.dataDir,
      systemDirs: [],
    });

    expect(dir).toBe(path.join(fx.dataDir, 'mnist'));
  });

  it('finds CIFAR-10 as an archive or as an unpacked folder', async () => {
    const none = { systemDirs: [] };

    expect(
      await resolveDatasetDir('cifar-10', path.join(root, 'empty'), {
        ...none,
        sharedDataDir: fx.unpackedDataDir,
      }),
    ).toBe(path.join(fx.unpackedDataDir, 'cifar-10'));
    expect(await resolveDatasetDir('cifar-10', fx.dataDir, none)).toBe(
      path.join(fx.dataDir, 'cifar-10'),
    );
  });

  it('returns <dataDir>/<name> when no folder holds the dataset', async () => {
    const dataDir = path.join(root, 'empty');

    expect(
      await resolveDatasetDir('fashion-mnist', dataDir, { systemDirs: ['/nonexistent'] }),
    ).toBe(path.join(dataDir, 'fashion-mnist'));
  });

  it("knows Debian's Fashion-MNIST folder", () => {
    expect(SYSTEM_DATASET_DIRS['fashion-mnist']).toContain('/usr/share/datasets/fashion-mnist');
  });
});

describe('findIdxFile', () => {
  it('finds the gzipped or the plain name, else nothing', async () => {
    expect(await findIdxFile(path.join(fx.dataDir, 'mnist'), 't10k-images-idx3-ubyte')).toBe(
      path.join(fx.dataDir, 'mnist', 't10k-images-idx3-ubyte.gz'),
    );
    expect(
      await findIdxFile(path.join(fx.dataDir, 'fashion-mnist'), 't10k-images-idx3-ubyte'),
    ).toBe(path.join(fx.dataDir, 'fashion-mnist', 't10k-images-idx3-ubyte'));
    expect(
      await findIdxFile(path.join(fx.dataDir, 'cifar-10'), 't10k-images-idx3-ubyte'),
    ).toBeUndefined();
  });
});
