/**
 * Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
 * a big-endian header (magic, then one uint32 per dimension) followed by uint8 values.
 * Every structural fault is a `dataset.corrupt` error naming the file, so a half-finished
 * download is reported as such instead of surfacing later as a shape error in training.
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import {
  datasetCorruptError,
  datasetMissingError,
  errorMessage,
  isNotFound,
} from './dataset-errors.ts';
import type { DatasetName } from './types.ts';

/** Magic number of an IDX file of uint8 values with 3 dimensions: `[count, rows, cols]`. */
export const IDX_IMAGES_MAGIC = 0x0803; // 2051

/** Magic number of an IDX file of uint8 values with 1 dimension: `[count]`. */
export const IDX_LABELS_MAGIC = 0x0801; // 2049

const IMAGES_HEADER_BYTES = 16;
const LABELS_HEADER_BYTES = 8;

/** Images read from an IDX file. */
export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** Pixels, row-major `[count, rows, cols]`, its own exact-size buffer. */
  readonly data: Uint8Array;
}

/** Images and their labels, checked to be the same number. */
export interface IdxPair {
  readonly images: IdxImages;
  /** `[count]`, each `< numClasses`. */
  readonly labels: Uint8Array;
}

const gunzipAsync = promisify(gunzip);

/** True when `bytes` starts with the gzip magic bytes `1f 8b` (RFC 1952, section 2.3.1). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads a whole file, gunzipping it when it starts with the gzip magic bytes, so the official
 * `.gz` files and unpacked copies read alike.
 *
 * @throws {UserError} `dataset.missing` (with the download command) when the file does not exist;
 *   `dataset.corrupt` when the gzip stream is damaged or truncated.
 */
export async function readMaybeGzipped(file: string, dataset: DatasetName): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (e) {
    if (isNotFound(e)) throw datasetMissingError(dataset, file);
    throw e;
  }
  if (!isGzip(raw)) return raw;
  try {
    return await gunzipAsync(raw);
  } catch (e) {
    throw datasetCorruptError(
      file,
      `cannot decompress the gzip data (${errorMessage(e)}); the file is probably incomplete`,
    );
  }
}

/**
 * Parses an IDX images file (magic 2051) already decompressed.
 *
 * @param file named in errors only.
 * @throws {UserError} `dataset.corrupt` on a wrong magic number, a short header, or a payload that
 *   is not exactly `count * rows * cols` bytes (truncated, or trailing bytes).
 * @example
 * const { count, rows, cols, data } = parseIdxImages(bytes, 'train-images-idx3-ubyte');
 */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  checkHeader(bytes, file, IDX_IMAGES_MAGIC, IMAGES_HEADER_BYTES);
  const view = dataView(bytes);
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  if (rows === 0 || cols === 0)
    throw datasetCorruptError(file, `image size ${rows}x${cols} in the header is empty`);
  const expected = count * rows * cols;
  checkPayload(bytes, file, IMAGES_HEADER_BYTES, expected, `${count} images of ${rows}x${cols}`);
  return { count, rows, cols, data: bytes.slice(IMAGES_HEADER_BYTES) };
}

/**
 * Parses an IDX labels file (magic 2049) already decompressed.
 *
 * @param numClasses every label must be below it.
 * @throws {UserError} `dataset.corrupt` on a wrong magic number, a short header, a payload that is
 *   not exactly `count` bytes, or a label `>= numClasses`.
 */
export function parseIdxLabels(bytes: Uint8Array, file: string, numClasses: number): Uint8Array {
  checkHeader(bytes, file, IDX_LABELS_MAGIC, LABELS_HEADER_BYTES);
  const count = dataView(bytes).getUint32(4);
  checkPayload(bytes, file, LABELS_HEADER_BYTES, count, `${count} labels`);
  const labels = bytes.slice(LABELS_HEADER_BYTES);
  const bad = labels.findIndex((label) => label >= numClasses);
  if (bad >= 0) {
    throw datasetCorruptError(
      file,
      `label ${labels[bad]} of item ${bad} is outside 0..${numClasses - 1}`,
      {
        index: bad,
        label: labels[bad] ?? -1,
      },
    );
  }
  return labels;
}

/**
 * Reads an images file and its labels file (each gzipped or not) and checks they pair up.
 *
 * @throws {UserError} `dataset.missing` for an absent file; `dataset.corrupt` for any fault found
 *   by {@link parseIdxImages} / {@link parseIdxLabels}, or when the two counts differ.
 */
export async function readIdxPair(
  imagesFile: string,
  labelsFile: string,
  dataset: DatasetName,
  numClasses: number,
): Promise<IdxPair> {
  const [imageBytes, labelBytes] = await Promise.all([
    readMaybeGzipped(imagesFile, dataset),
    readMaybeGzipped(labelsFile, dataset),
  ]);
  const images = parseIdxImages(imageBytes, imagesFile);
  const labels = parseIdxLabels(labelBytes, labelsFile, numClasses);
  if (labels.length !== images.count) {
    throw datasetCorruptError(
      labelsFile,
      `has ${labels.length} labels but ${imagesFile} has ${images.count} images`,
      {
        expected: images.count,
        actual: labels.length,
      },
    );
  }
  return { images, labels };
}

function checkHeader(bytes: Uint8Array, file: string, magic: number, headerBytes: number): void {
  // The magic number first: a labels file given as images should say so, short as it is.
  const found = bytes.length >= 4 ? dataView(bytes).getUint32(0) : undefined;
  if (found !== undefined && found !== magic) {
    const known =
      found === IDX_IMAGES_MAGIC
        ? ' (an images file)'
        : found === IDX_LABELS_MAGIC
          ? ' (a labels file)'
          : '';
    throw datasetCorruptError(file, `bad IDX magic number ${found}${known}, expected ${magic}`, {
      expected: magic,
      actual: found,
    });
  }
  if (bytes.length < headerBytes) {
    throw datasetCorruptError(
      file,
      `is ${bytes.length} bytes long, shorter than the ${headerBytes}-byte IDX header`,
      {
        expected: headerBytes,
        actual: bytes.length,
      },
    );
  }
}

function checkPayload(
  bytes: Uint8Array,
  file: string,
  headerBytes: number,
  expected: number,
  what: string,
): void {
  const actual = bytes.length - headerBytes;
  if (actual === expected) return;
  const problem = actual < expected ? 'truncated' : 'trailing bytes after the data';
  throw datasetCorruptError(
    file,
    `${problem}: the header announces ${what}, ${expected} bytes after the ${headerBytes}-byte header, but there are ${actual}`,
    { expected, actual },
  );
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
