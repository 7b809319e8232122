import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetName, DatasetSplit } from './types.ts';

/**
 * Folders where operating-system packages install a dataset, searched last. Debian's
 * `dataset-fashion-mnist` package puts the four official IDX files in
 * `/usr/share/datasets/fashion-mnist` (`dpkg -L dataset-fashion-mnist`).
 */
export const SYSTEM_DATASET_DIRS: Readonly<Record<DatasetName, readonly string[]>> = {
  mnist: [],
  'fashion-mnist': ['/usr/share/datasets/fashion-mnist'],
  'cifar-10': [],
};

/** Official IDX file names (without `.gz`) of MNIST and Fashion-MNIST, per split. */
export const IDX_FILES: Readonly<
  Record<DatasetSplit, { readonly images: string; readonly labels: string }>
> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** The official CIFAR-10 "binary version" archive name. */
export const CIFAR10_ARCHIVE = 'cifar-10-binary.tar.gz';

/** The folder the CIFAR-10 archive unpacks to. */
export const CIFAR10_FOLDER = 'cifar-10-batches-bin';

/** Where {@link resolveDatasetDir} looks besides `DATA_DIR`. */
export interface LocateOptions {
  /**
   * A read-only folder laid out like `DATA_DIR` (`mnist/`, `cifar-10/`...), for instance a
   * course's shared copy (`CNN_SHARED_DATA` in the configuration). It is searched after
   * `DATA_DIR`, so a lab machine can train without downloading anything. Absent: none.
   */
  readonly sharedDataDir?: string;
  /** Replaces {@link SYSTEM_DATASET_DIRS} for this dataset. */
  readonly systemDirs?: readonly string[];
}

/**
 * Finds the folder holding a dataset: `<dataDir>/<name>` first, then `<sharedDataDir>/<name>`,
 * then the system folders ({@link SYSTEM_DATASET_DIRS}). A folder counts only when it holds every
 * file the loader needs (either split). When none does, returns `<dataDir>/<name>`, so that the
 * loader's "missing" error names the place a download would fill.
 *
 * @example
 * const dir = await resolveDatasetDir('fashion-mnist', loadConfig().DATA_DIR);
 * // '/usr/share/datasets/fashion-mnist' on Debian with the package installed and nothing downloaded
 */
export async function resolveDatasetDir(
  name: DatasetName,
  dataDir: string,
  options: LocateOptions = {},
): Promise<string> {
  const own = path.join(dataDir, name);
  const shared = options.sharedDataDir;
  const candidates = [
    own,
    ...(shared ? [path.join(shared, name)] : []),
    ...(options.systemDirs ?? SYSTEM_DATASET_DIRS[name]),
  ];
  for (const dir of candidates) {
    if (await holdsDataset(name, dir)) return dir;
  }
  return own;
}

/**
 * The path of an IDX file in `dir`, gzipped (`<base>.gz`, as distributed) or not (`<base>`),
 * or `undefined` when neither exists.
 */
export async function findIdxFile(dir: string, base: string): Promise<string | undefined> {
  for (const candidate of [path.join(dir, `${base}.gz`), path.join(dir, base)]) {
    if (await isFile(candidate)) return candidate;
  }
  return undefined;
}

async function holdsDataset(name: DatasetName, dir: string): Promise<boolean> {
  if (name === 'cifar-10') {
    return (
      (await isFile(path.join(dir, CIFAR10_ARCHIVE))) ||
      (await isDirectory(path.join(dir, CIFAR10_FOLDER)))
    );
  }
  for (const split of Object.values(IDX_FILES)) {
    for (const base of [split.images, split.labels]) {
      if ((await findIdxFile(dir, base)) === undefined) return false;
    }
  }
  return true;
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}
