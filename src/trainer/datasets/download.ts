/**
 * Fetches the official dataset files into `DATA_DIR`, in the layout the loaders read. Each file
 * is written to a temporary name, verified against a SHA-256 table and only then renamed into
 * place, so an interrupted or damaged download never looks like a dataset.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { logger } from '../../logger.ts';
import { datasetCorruptError, errorMessage } from './dataset-errors.ts';
import { CIFAR10_ARCHIVE, IDX_FILES } from './locations.ts';
import type { DatasetName } from './types.ts';

/** The expected checksum of one downloaded file. */
export interface FileChecksum {
  /** Name in the URL and on disk. */
  readonly file: string;
  /** Expected SHA-256, lowercase hex. */
  readonly sha256: string;
  /**
   * What is hashed: `file`, the bytes as served; `gunzipped`, the decompressed content. The IDX
   * files are checked on their content because mirrors and distributions re-compress them (the
   * gzip bytes differ, the data does not).
   */
  readonly of: 'file' | 'gunzipped';
}

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

/** How files are fetched (shared with the model downloader); every option has a default. */
export interface FetchOptions {
  /** The fetch to use; default the global one. */
  readonly fetch?: typeof fetch;
  /** Further attempts after a transient failure (network error, HTTP 408/429/5xx, short body); default 3. */
  readonly retries?: number;
  /** Wait before the first retry, doubled each time; default 1000 ms. */
  readonly retryDelayMs?: number;
  /** Cancels the download. */
  readonly signal?: AbortSignal;
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
    await downloadVerified(name, url, dest, checksum, options);
    files.push({ file: checksum.file, path: dest, status: 'downloaded' });
  }
  return { dir, files };
}

/**
 * SHA-256 (hex) of a file, or of its gunzipped content; `algorithm` picks another hash (`md5`
 * where a source publishes only that).
 * @throws when the file cannot be read or, for `gunzipped`, is not valid gzip.
 */
export async function hashOf(
  file: string,
  of: FileChecksum['of'],
  algorithm: 'sha256' | 'md5' = 'sha256',
): Promise<string> {
  const hash = createHash(algorithm);
  if (of === 'gunzipped') await pipeline(createReadStream(file), createGunzip(), hash);
  else await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function downloadVerified(
  name: DatasetName,
  url: string,
  dest: string,
  checksum: FileChecksum,
  options: DownloadOptions,
): Promise<void> {
  const temp = `${dest}.${randomUUID().slice(0, 8)}.part`;
  try {
    await fetchToFile(url, temp, {
      ...fetchOptionsOf(options),
      onProgress: (receivedBytes, totalBytes) =>
        options.onProgress?.({ dataset: name, file: checksum.file, receivedBytes, totalBytes }),
    });
    const actual = await hashOf(temp, checksum.of).catch(
      (e: unknown) => `unreadable (${errorMessage(e)})`,
    );
    if (actual !== checksum.sha256) {
      throw datasetCorruptError(
        url,
        `checksum mismatch: SHA-256 of the ${checksum.of === 'file' ? 'file' : 'gunzipped content'} is ${actual}, expected ${checksum.sha256}; the file was deleted`,
        { expected: checksum.sha256, actual, file: checksum.file },
      );
    }
    await rename(temp, dest);
    logger.info({ dataset: name, url, file: dest }, 'dataset file downloaded');
  } finally {
    await rm(temp, { force: true });
  }
}

/** A failure worth another attempt. */
class TransientError extends Error {}

/** The {@link FetchOptions} of a larger options object (and nothing else). */
export function fetchOptionsOf(options: FetchOptions): FetchOptions {
  const { fetch, retries, retryDelayMs, signal } = options;
  return {
    ...(fetch ? { fetch } : {}),
    ...(retries === undefined ? {} : { retries }),
    ...(retryDelayMs === undefined ? {} : { retryDelayMs }),
    ...(signal ? { signal } : {}),
  };
}

/** {@link fetchToFile}'s options: how to fetch, and a callback for every chunk received. */
export interface FetchToFileOptions extends FetchOptions {
  readonly onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

/**
 * Fetches `url` into the file `temp` (created or overwritten), retrying transient failures
 * (network errors, HTTP 408/425/429/5xx, a body shorter than its `Content-Length`) with
 * exponential back-off. The caller verifies the bytes and renames the file into place.
 * @throws {Error} `could not download <url>: <reason> (<n> attempts)` once no retry is left, or
 *   at once for a permanent failure (HTTP 404...).
 */
export async function fetchToFile(
  url: string,
  temp: string,
  options: FetchToFileOptions = {},
): Promise<void> {
  const retries = options.retries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchOnce(url, temp, options);
      return;
    } catch (e) {
      if (!(e instanceof TransientError) || attempt >= retries || options.signal?.aborted) {
        const tries = attempt + 1;
        throw new Error(
          `could not download ${url}: ${errorMessage(e)} (${tries} attempt${tries > 1 ? 's' : ''})`,
          {
            cause: e,
          },
        );
      }
      const delay = retryDelayMs * 2 ** attempt;
      logger.warn(
        { url, attempt: attempt + 1, delay, err: errorMessage(e) },
        'download failed, retrying',
      );
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
    }
  }
}

async function fetchOnce(url: string, temp: string, options: FetchToFileOptions): Promise<void> {
  const fetchImpl = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await fetchImpl(url, options.signal ? { signal: options.signal } : {});
  } catch (e) {
    // fetch rejects with a TypeError for network failures (refused, reset, DNS).
    throw new TransientError(errorMessage(e) + causeSuffix(e), { cause: e });
  }
  if (!response.ok || response.body === null) {
    const message = `HTTP ${response.status} ${response.statusText}`.trim();
    await response.body?.cancel();
    throw isTransientStatus(response.status) ? new TransientError(message) : new Error(message);
  }
  const header = response.headers.get('content-length');
  const totalBytes = header === null ? undefined : Number(header);
  const body: AsyncIterable<Uint8Array> = response.body;
  let receivedBytes = 0;
  const out = await open(temp, 'w');
  try {
    for await (const chunk of body) {
      await out.write(chunk);
      receivedBytes += chunk.byteLength;
      options.onProgress?.(receivedBytes, totalBytes);
    }
  } catch (e) {
    throw new TransientError(`connection lost after ${receivedBytes} bytes (${errorMessage(e)})`, {
      cause: e,
    });
  } finally {
    await out.close();
  }
  if (totalBytes !== undefined && receivedBytes !== totalBytes) {
    throw new TransientError(`received ${receivedBytes} of ${totalBytes} bytes`);
  }
}

function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** undici hides the reason (ECONNREFUSED...) in `cause`. */
function causeSuffix(e: unknown): string {
  const cause = e instanceof Error ? e.cause : undefined;
  return cause === undefined ? '' : ` (${errorMessage(cause)})`;
}

export function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

export async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}
