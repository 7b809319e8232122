import path from 'node:path';
import { logger } from '../../logger.ts';
import { datasetCorruptError } from './dataset-errors.ts';
import { readIdxPair } from './idx.ts';
import { findIdxFile, IDX_FILES, resolveDatasetDir, type LocateOptions } from './locations.ts';
import type { Dataset, DatasetSplit, MnistLikeName } from './types.ts';

/** MNIST classes: the digit shown. */
export const MNIST_CLASS_NAMES: readonly string[] = [
  '0',
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  '8',
  '9',
];

/** Fashion-MNIST classes, as named by Xiao et al. (2017), arXiv:1708.07747, table 1. */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

const CLASS_NAMES: Readonly<Record<MnistLikeName, readonly string[]>> = {
  mnist: MNIST_CLASS_NAMES,
  'fashion-mnist': FASHION_MNIST_CLASS_NAMES,
};

const SIDE = 28;

/**
 * Loads one split of MNIST or Fashion-MNIST from the four official IDX files, gzipped or not
 * (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-...`). The folder is the
 * first complete one of `<dataDir>/<name>`, `<sharedDataDir>/<name>` and the system folders
 * (see {@link resolveDatasetDir}; `options` replaces the last two, for tests).
 *
 * @returns `images` `[count, 28, 28]` uint8 row-major (0 = background), `labels` `[count]` in 0..9.
 * @throws {UserError} `dataset.missing` (with the download command) when a file is absent;
 *   `dataset.corrupt` when a file is damaged, the counts differ, or the images are not 28x28.
 * @example
 * const train = await loadMnistLike('mnist', 'train', loadConfig().DATA_DIR);
 * train.count; // 60000
 * train.labels[0]; // 5
 */
export async function loadMnistLike(
  name: MnistLikeName,
  split: DatasetSplit,
  dataDir: string,
  options: LocateOptions = {},
): Promise<Dataset<28, 28, 1>> {
  const started = performance.now();
  const dir = await resolveDatasetDir(name, dataDir, options);
  const bases = IDX_FILES[split];
  const imagesFile = (await findIdxFile(dir, bases.images)) ?? path.join(dir, `${bases.images}.gz`);
  const labelsFile = (await findIdxFile(dir, bases.labels)) ?? path.join(dir, `${bases.labels}.gz`);
  const classNames = CLASS_NAMES[name];
  const { images, labels } = await readIdxPair(imagesFile, labelsFile, name, classNames.length);
  if (images.rows !== SIDE || images.cols !== SIDE) {
    throw datasetCorruptError(
      imagesFile,
      `images are ${images.rows}x${images.cols}, expected ${SIDE}x${SIDE}`,
      {
        expected: `${SIDE}x${SIDE}`,
        actual: `${images.rows}x${images.cols}`,
      },
    );
  }
  logger.debug(
    { dataset: name, split, dir, count: images.count, ms: Math.round(performance.now() - started) },
    'dataset loaded',
  );
  return {
    images: images.data,
    labels,
    count: images.count,
    height: SIDE,
    width: SIDE,
    channels: 1,
    classNames,
  };
}
