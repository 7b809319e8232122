/**
 * Downloads that can be trusted: a file is fetched to a temporary name beside its destination
 * (retrying transient failures with exponential back-off), its SHA-256 (or MD5 where a source
 * publishes only that) checked, and only then renamed into place, so an interrupted or damaged
 * download never looks like a good file. Used by the data set downloader
 * (`trainer/datasets/download.ts`) and the model downloader (`ml/model-download.ts`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { UserError } from '../errors.ts';
import { logger } from '../logger.ts';

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

/** The message of a caught value, whatever was thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'string' ? e : 'unknown error';
}

/**
 * The `dataset.corrupt` error for a downloaded or stored `file` (a data set file, a model file):
 * the message starts with the path, `params.path` holds it.
 */
export function corruptFileError(
  file: string,
  detail: string,
  params: Readonly<Record<string, string | number>> = {},
): UserError {
  return new UserError('dataset.corrupt', `${file}: ${detail}`, { path: file, ...params });
}

/**
 * Fetches `url` to `dest` atomically: into `<dest>.<random>.part` ({@link fetchToFile}, with its
 * retries), checks the hash ({@link hashOf}), then renames it onto `dest`. The temporary file is
 * removed whatever happens.
 * @throws {UserError} `dataset.corrupt` naming the URL when the checksum does not match.
 * @throws {Error} from {@link fetchToFile} when the file cannot be fetched.
 */
export async function fetchVerified(
  url: string,
  dest: string,
  checksum: Pick<FileChecksum, 'sha256' | 'of'> & { readonly file?: string },
  options: FetchToFileOptions = {},
): Promise<void> {
  const temp = `${dest}.${randomUUID().slice(0, 8)}.part`;
  try {
    await fetchToFile(url, temp, options);
    const actual = await hashOf(temp, checksum.of).catch(
      (e: unknown) => `unreadable (${errorMessage(e)})`,
    );
    if (actual !== checksum.sha256) {
      throw corruptFileError(
        url,
        `checksum mismatch: SHA-256 of the ${checksum.of === 'file' ? 'file' : 'gunzipped content'} is ${actual}, expected ${checksum.sha256}; the file was deleted`,
        { expected: checksum.sha256, actual, ...(checksum.file ? { file: checksum.file } : {}) },
      );
    }
    await rename(temp, dest);
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
