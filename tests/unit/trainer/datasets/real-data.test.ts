/**
 * Extra checks on the real data sets, run only where they are present (a course machine with the
 * shared data folder, Debian's dataset-fashion-mnist package). The project's tests never need them.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../../src/config.ts';
import { loadCifar10 } from '../../../../src/trainer/datasets/cifar10.ts';
import { DATASET_SOURCES, hashOf } from '../../../../src/trainer/datasets/download.ts';
import { loadMnistLike } from '../../../../src/trainer/datasets/mnist.ts';

const shared = process.env.CNN_SHARED_DATA ?? path.join(PROJECT_ROOT, '..', 'shared', 'data');
const debianFashion = '/usr/share/datasets/fashion-mnist';
const onlyShared = { sharedDataDir: shared, systemDirs: [] } as const;
const nowhere = path.join(PROJECT_ROOT, 'no-such-data-dir');

describe.skipIf(!existsSync(path.join(shared, 'mnist')))('real MNIST (shared data folder)', () => {
  it('has 60000 train images, the first a 5, and 10000 test images, the first a 7', async () => {
    const train = await loadMnistLike('mnist', 'train', nowhere, onlyShared);
    const test = await loadMnistLike('mnist', 'test', nowhere, onlyShared);

    expect([train.count, train.images.length, train.labels[0]]).toEqual([60_000, 60_000 * 784, 5]);
    expect([test.count, test.labels[0]]).toEqual([10_000, 7]);
  });

  it('matches the download checksums', async () => {
    for (const f of DATASET_SOURCES.mnist.files) {
      expect(await hashOf(path.join(shared, 'mnist', f.file), f.of)).toBe(f.sha256);
    }
  });
});

describe.skipIf(!existsSync(path.join(shared, 'cifar-10')))(
  'real CIFAR-10 (shared data folder)',
  () => {
    it('has 50000 train and 10000 test images of 32x32x3', async () => {
      const train = await loadCifar10('train', nowhere, onlyShared);
      const test = await loadCifar10('test', nowhere, onlyShared);

      expect([train.count, train.images.length, test.count]).toEqual([
        50_000,
        50_000 * 3072,
        10_000,
      ]);
      expect(test.classNames[0]).toBe('airplane');
    });
  },
);

describe.skipIf(!existsSync(debianFashion))("real Fashion-MNIST (Debian's package)", () => {
  it('is found in the system folder and has 60000 + 10000 images, the first an ankle boot', async () => {
    const train = await loadMnistLike('fashion-mnist', 'train', nowhere, {});
    const test = await loadMnistLike('fashion-mnist', 'test', nowhere, {});

    expect([train.count, test.count]).toEqual([60_000, 10_000]);
    expect(train.classNames[train.labels[0] ?? -1]).toBe('Ankle boot');
  });

  it('matches the download checksums', async () => {
    for (const f of DATASET_SOURCES['fashion-mnist'].files) {
      expect(await hashOf(path.join(debianFashion, f.file), f.of)).toBe(f.sha256);
    }
  });
});
