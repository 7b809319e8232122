/**
 * Manual check of the dataset loaders on real files: loads every split it can find and prints
 * counts, shapes, the first labels, per-class counts and the load time.
 *
 *   CNN_SHARED_DATA=../shared/data npx tsx scripts/verify-datasets.ts [dataDir]
 *
 * Not part of the tests: the real data sets are not shipped with the project.
 */
import { loadConfig } from '../src/config.ts';
import { isUserError } from '../src/errors.ts';
import { loadDataset } from '../src/trainer/datasets/load.ts';
import { DATASET_NAMES, type DatasetSplit } from '../src/trainer/datasets/types.ts';

const dataDir = process.argv[2] ?? loadConfig().DATA_DIR;
let failures = 0;
for (const name of DATASET_NAMES) {
  for (const split of ['train', 'test'] as DatasetSplit[]) {
    const started = performance.now();
    try {
      const d = await loadDataset(name, split, dataDir);
      const perClass = new Array<number>(d.classNames.length).fill(0);
      for (const label of d.labels) perClass[label] = (perClass[label] ?? 0) + 1;
      let sum = 0;
      for (const v of d.images) sum += v;
      console.log(
        `${name} ${split}: ${d.count} x ${d.height}x${d.width}x${d.channels}, images ${d.images.length} bytes,` +
          ` mean pixel ${(sum / d.images.length).toFixed(2)}, first labels [${[...d.labels.subarray(0, 10)].join(',')}],` +
          ` per class [${perClass.join(',')}], classes ${d.classNames.join('|')}, ${Math.round(performance.now() - started)} ms`,
      );
    } catch (e) {
      failures++;
      console.log(`${name} ${split}: ${isUserError(e) ? `${e.id}: ${e.message}` : String(e)}`);
    }
  }
}
process.exitCode = failures === 0 ? 0 : 1;
