import { loadCifar10, type Cifar10Options } from './cifar10.ts';
import { loadMnistLike } from './mnist.ts';
import type { Dataset, DatasetName, DatasetSplit } from './types.ts';

/**
 * Loads one split of any known dataset by name, for callers that take the name from a recipe or
 * the command line. See {@link loadMnistLike} and {@link loadCifar10} for layouts and errors.
 *
 * @example
 * const test = await loadDataset('fashion-mnist', 'test', loadConfig().DATA_DIR);
 * [test.count, test.height, test.width, test.channels]; // [10000, 28, 28, 1]
 */
export async function loadDataset(
  name: DatasetName,
  split: DatasetSplit,
  dataDir: string,
  options: Cifar10Options = {},
): Promise<Dataset> {
  return name === 'cifar-10'
    ? loadCifar10(split, dataDir, options)
    : loadMnistLike(name, split, dataDir, options);
}
