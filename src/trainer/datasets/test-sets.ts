/**
 * The lab's official test sets for `/check` (issue 18): the test split of MNIST, Fashion-MNIST or
 * CIFAR-10 from the first data folder that holds it, loaded once and kept. Handed to the core by
 * the entry points (the core never imports the trainer).
 */
import { isUserError } from '../../errors.ts';
import { loadDataset } from './load.ts';
import type { Dataset, DatasetName } from './types.ts';

/** The test sets of the data folders `dirs` (searched in order). */
export function createTestSets(dirs: readonly string[]): {
  load(name: DatasetName): Promise<Dataset | null>;
} {
  const cache = new Map<DatasetName, Promise<Dataset | null>>();
  const find = async (name: DatasetName): Promise<Dataset | null> => {
    for (const dir of dirs) {
      try {
        return await loadDataset(name, 'test', dir);
      } catch (e) {
        if (!isUserError(e) || e.id !== 'dataset.missing') throw e;
      }
    }
    return null;
  };
  return {
    load(name) {
      let p = cache.get(name);
      if (!p) {
        p = find(name);
        cache.set(name, p);
        p.catch(() => cache.delete(name));
      }
      return p;
    },
  };
}
