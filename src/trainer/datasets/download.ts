/**
 * Fetches the official dataset files into `DATA_DIR`, in the layout the loaders read. Each file
 * is written to a temporary name, verified against a SHA-256 table and only then renamed into
 * place, so an interrupted or damaged download never looks like a dataset.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  fetchOptionsOf,
  fetchVerified,
  hashOf,
  withTrailingSlash,
  type FetchOptions,
  type FileChecksum,
} from '../../io/download.ts';
import { isFile } from '../../io/files.ts';
import { logger } from '../../logger.ts';
import { CIFAR10_ARCHIVE, IDX_FILES } from './locations.ts';
import type { DatasetName } from './types.ts';

export type { FileChecksum } from '../../io/download.ts';
export { hashOf } from '../../io/download.ts';

/** Where a dataset is downloaded from and what it must hash to. */
export interface DatasetSource {
  /** Folder URL; each file's URL is this plus its name. */
  readonly baseUrl: string;
  readonly files: readonly FileChecksum[];
}

const idxChecksums = (sha256: Record<string, string>): FileChecksum[] =>
  [
    IDX_FILES.train.images,
    IDX_FILES.train.labels,
    IDX_FILES.test.images,
    IDX_FILES.test.labels,
  ].map((base) => ({
    file: `${base}.gz`,
    sha256: sha256[base] ?? '',
    of: 'gunzipped',
  }));

/**
 * The official sources. IDX hashes are of the uncompressed files, whose MD5s equal the published
 * ones (MNIST: 6bbc9ace..., Fashion-MNIST: f4a8712d..., see the MNIST and Zalando pages). The
 * CIFAR-10 hash is of the archive as served (170,052,171 bytes, published MD5
 * c32a1d4ab5d03f1284b67883e8d87530).
 */
export const DATASET_SOURCES: Readonly<Record<DatasetName, DatasetSource>> = {
  // TensorFlow's mirror: the original host (yann.lecun.com) is often down.
  mnist: {
    baseUrl: 'https://storage.googleapis.com/cvdf-datasets/mnist/',
    files: idxChecksums({
      'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
      'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
      't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
      't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
    }),
  },
  'fashion-mnist': {
    baseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    files: idxChecksums({
      'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
      'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
      't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
      't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    }),
  },
  'cifar-10': {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [
      {
        file: CIFAR10_ARCHIVE,
        sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
        of: 'file',
      },
    ],
  },
};

/** Bytes received so far of one file. */
export interface DownloadProgress {
  readonly dataset: DatasetName;
  readonly file: string;
  readonly receivedBytes: number;
  /** From `Content-Length`, when the server sends it. */
  readonly totalBytes: number | undefined;
}

/** Options of {@link downloadDataset}; every one has a production default. */
export interface DownloadOptions extends FetchOptions {
  /** Replaces the source's folder URL (a mirror, or a local server in tests). */
  readonly baseUrl?: string;
  /** Called for every chunk received. */
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Replaces the source's file list and checksums (tests). */
  readonly checksums?: readonly FileChecksum[];
}

/** What happened to each file. */
export interface DownloadResult {
  /** The folder written to, `<dataDir>/<name>`. */
  readonly dir: string;
  readonly files: readonly {
    readonly file: string;
    readonly path: string;
    /** `present`: already there with the right checksum, not fetched again. */
    readonly status: 'downloaded' | 'present';
  }[];
}

/**
 * Downloads a dataset's official files into `<dataDir>/<name>/`, skipping those already present
 * with the right checksum. Transient failures are retried with exponential back-off.
 *
 * @throws {UserError} `dataset.corrupt` when a downloaded file does not match its checksum (the
 *   file is deleted).
 * @throws {Error} when a file cannot be fetched (HTTP error, network down after the retries).
 * @example
 * const { files } = await downloadDataset('mnist', loadConfig().DATA_DIR, {
 *   onProgress: ({ file, receivedBytes, totalBytes }) => bar.update(receivedBytes, { file, totalBytes }),
 * });
 */
export async function downloadDataset(
  name: DatasetName,
  dataDir: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const source = DATASET_SOURCES[name];
  const baseUrl = withTrailingSlash(options.baseUrl ?? source.baseUrl);
  const dir = path.join(dataDir, name);
  await mkdir(dir, { recursive: true });
  const files: DownloadResult['files'][number][] = [];
  for (const checksum of options.checksums ?? source.files) {
    const dest = path.join(dir, checksum.file);
    if (
      (await isFile(dest)) &&
      (await hashOf(dest, checksum.of).catch(() => undefined)) === checksum.sha256
    ) {
      logger.info({ dataset: name, file: dest }, 'dataset file already present');
      files.push({ file: checksum.file, path: dest, status: 'present' });
      continue;
    }
    const url = new URL(checksum.file, baseUrl).href;
    await fetchVerified(url, dest, checksum, {
      ...fetchOptionsOf(options),
      onProgress: (receivedBytes, totalBytes) =>
        options.onProgress?.({ dataset: name, file: checksum.file, receivedBytes, totalBytes }),
    });
    logger.info({ dataset: name, url, file: dest }, 'dataset file downloaded');
    files.push({ file: checksum.file, path: dest, status: 'downloaded' });
  }
  return { dir, files };
}
