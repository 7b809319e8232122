/**
 * Loader for the CIFAR-10 "binary version" (Krizhevsky 2009, "Learning Multiple Layers of
 * Features from Tiny Images", https://www.cs.toronto.edu/~kriz/cifar.html). Each batch file is a
 * run of 3073-byte records: one label byte, then the 32x32 red plane, green plane and blue plane,
 * each row-major. The loader turns the planes into interleaved RGB (HWC), the layout TF.js
 * convolutions take.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { isUserError } from '../../errors.ts';
import { logger } from '../../logger.ts';
import {
  datasetCorruptError,
  datasetMissingError,
  errorMessage,
  isNotFound,
} from './dataset-errors.ts';
import {
  CIFAR10_ARCHIVE,
  CIFAR10_FOLDER,
  resolveDatasetDir,
  type LocateOptions,
} from './locations.ts';
import type { Dataset, DatasetSplit } from './types.ts';
import { isDirectory, isFile } from '../../io/files.ts';

/** The standard CIFAR-10 class names, used when `batches.meta.txt` is absent. */
export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** The batch files of each split, in the order their records are returned. */
export const CIFAR10_BATCH_FILES: Readonly<Record<DatasetSplit, readonly string[]>> = {
  train: [
    'data_batch_1.bin',
    'data_batch_2.bin',
    'data_batch_3.bin',
    'data_batch_4.bin',
    'data_batch_5.bin',
  ],
  test: ['test_batch.bin'],
};

/** Records in each official batch file. */
export const CIFAR10_RECORDS_PER_BATCH = 10_000;

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = PLANE * 3;
/** One label byte, then the R, G and B planes. */
export const CIFAR10_RECORD_BYTES = 1 + PIXEL_BYTES;
const META_FILE = 'batches.meta.txt';
/** Tar entry types holding a regular file (pre-POSIX archives use `OldFile`). */
const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);

/** Options of {@link loadCifar10}. */
export interface Cifar10Options extends LocateOptions {
  /**
   * Records each batch file must hold: 10000 in the official files (the default). Tests pass a
   * small number to run on tiny synthetic batches.
   */
  readonly recordsPerBatch?: number;
}

/**
 * Loads one split of CIFAR-10 from an unpacked `cifar-10-batches-bin/` folder when there is one,
 * else from the official `cifar-10-binary.tar.gz`, streamed through gunzip and a tar parser (the
 * archive is never held whole in memory), both looked up in the dataset folder (see
 * {@link resolveDatasetDir}). Class names come from `batches.meta.txt` when present.
 *
 * @returns `images` `[count, 32, 32, 3]` uint8, interleaved RGB; `labels` `[count]` in 0..9;
 *   train holds data_batch_1..5 in order (50000), test test_batch (10000).
 * @throws {UserError} `dataset.missing` when neither the folder nor the archive exists, or the
 *   folder lacks a batch; `dataset.corrupt` when the archive is damaged or lacks a batch, a batch
 *   is not exactly `recordsPerBatch` records of 3073 bytes, a label is >= 10, or the class-name
 *   file does not list 10 names.
 * @example
 * const test = await loadCifar10('test', loadConfig().DATA_DIR);
 * test.count; // 10000
 */
export async function loadCifar10(
  split: DatasetSplit,
  dataDir: string,
  options: Cifar10Options = {},
): Promise<Dataset<32, 32, 3>> {
  const recordsPerBatch = options.recordsPerBatch ?? CIFAR10_RECORDS_PER_BATCH;
  if (!Number.isInteger(recordsPerBatch) || recordsPerBatch < 1) {
    throw new RangeError(`recordsPerBatch must be a positive integer, got ${recordsPerBatch}`);
  }
  const started = performance.now();
  const dir = await resolveDatasetDir('cifar-10', dataDir, options);
  const folder = path.join(dir, CIFAR10_FOLDER);
  const archive = path.join(dir, CIFAR10_ARCHIVE);
  const assembler = new BatchAssembler(CIFAR10_BATCH_FILES[split], recordsPerBatch);
  let source: string;
  if (await isDirectory(folder)) {
    source = folder;
    await readFolder(folder, assembler);
  } else if (await isFile(archive)) {
    source = archive;
    await readArchive(archive, assembler);
  } else {
    throw datasetMissingError('cifar-10', archive);
  }
  const dataset = assembler.finish();
  logger.debug(
    {
      dataset: 'cifar-10',
      split,
      source,
      count: dataset.count,
      ms: Math.round(performance.now() - started),
    },
    'dataset loaded',
  );
  return dataset;
}

/** Checks each batch as it arrives and writes it, converted to HWC, at its place in the split. */
class BatchAssembler {
  private readonly images: Uint8Array;
  private readonly labels: Uint8Array;
  private readonly seen = new Set<string>();
  private classNames = CIFAR10_CLASS_NAMES;

  constructor(
    private readonly files: readonly string[],
    private readonly recordsPerBatch: number,
  ) {
    this.images = new Uint8Array(files.length * recordsPerBatch * PIXEL_BYTES);
    this.labels = new Uint8Array(files.length * recordsPerBatch);
  }

  /** True for the batches of this split and the class-name file. */
  wants(name: string): boolean {
    return name === META_FILE || this.files.includes(name);
  }

  /** Takes the bytes of `name` (a batch of this split or the class-name file); `where` is for errors. */
  add(name: string, bytes: Uint8Array, where: string): void {
    if (name === META_FILE) {
      this.classNames = parseClassNames(bytes, where);
      return;
    }
    const batch = this.files.indexOf(name);
    if (batch < 0) return;
    if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
      throw datasetCorruptError(
        where,
        `is ${bytes.length} bytes, not a whole number of ${CIFAR10_RECORD_BYTES}-byte records (truncated?)`,
        { expected: this.recordsPerBatch * CIFAR10_RECORD_BYTES, actual: bytes.length },
      );
    }
    const records = bytes.length / CIFAR10_RECORD_BYTES;
    if (records !== this.recordsPerBatch) {
      throw datasetCorruptError(
        where,
        `holds ${records} records, expected ${this.recordsPerBatch}`,
        {
          expected: this.recordsPerBatch,
          actual: records,
        },
      );
    }
    const first = batch * this.recordsPerBatch;
    for (let r = 0; r < records; r++) {
      const offset = r * CIFAR10_RECORD_BYTES;
      const label = bytes[offset] ?? 0;
      if (label >= CIFAR10_CLASS_NAMES.length) {
        throw datasetCorruptError(where, `label ${label} of record ${r} is outside 0..9`, {
          index: r,
          label,
        });
      }
      this.labels[first + r] = label;
      planesToInterleaved(bytes, offset + 1, this.images, (first + r) * PIXEL_BYTES);
    }
    this.seen.add(name);
  }

  /** The first batch of this split not added yet, if any. */
  firstMissing(): string | undefined {
    return this.files.find((f) => !this.seen.has(f));
  }

  finish(): Dataset<32, 32, 3> {
    const missing = this.firstMissing();
    if (missing !== undefined) throw new Error(`internal: batch ${missing} was never added`);
    return {
      images: this.images,
      labels: this.labels,
      count: this.labels.length,
      height: SIDE,
      width: SIDE,
      channels: 3,
      classNames: this.classNames,
    };
  }
}

/** Copies one record's R, G, B planes (`src[from..from+3072)`) into `dst` as RGBRGB... */
function planesToInterleaved(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  for (let p = 0; p < PLANE; p++) {
    const o = to + p * 3;
    dst[o] = src[from + p] ?? 0;
    dst[o + 1] = src[from + PLANE + p] ?? 0;
    dst[o + 2] = src[from + 2 * PLANE + p] ?? 0;
  }
}

function parseClassNames(bytes: Uint8Array, where: string): readonly string[] {
  const names = Buffer.from(bytes)
    .toString('utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (names.length !== CIFAR10_CLASS_NAMES.length) {
    throw datasetCorruptError(
      where,
      `lists ${names.length} class names, expected ${CIFAR10_CLASS_NAMES.length}`,
      {
        expected: CIFAR10_CLASS_NAMES.length,
        actual: names.length,
      },
    );
  }
  return names;
}

async function readFolder(folder: string, assembler: BatchAssembler): Promise<void> {
  const metaPath = path.join(folder, META_FILE);
  const meta = await readFile(metaPath).catch((e: unknown) => {
    if (isNotFound(e)) return undefined;
    throw e;
  });
  if (meta !== undefined) assembler.add(META_FILE, meta, metaPath);
  for (let name = assembler.firstMissing(); name !== undefined; name = assembler.firstMissing()) {
    const file = path.join(folder, name);
    const bytes = await readFile(file).catch((e: unknown) => {
      throw isNotFound(e) ? datasetMissingError('cifar-10', file) : e;
    });
    assembler.add(name, bytes, file);
  }
}

/**
 * Streams the archive through gunzip and a strict tar parser, handing each wanted member to the
 * assembler as soon as it is complete, so only one batch (30 MB) is buffered at a time.
 */
async function readArchive(archive: string, assembler: BatchAssembler): Promise<void> {
  let failure: unknown;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const name = path.posix.basename(entry.path);
      if (!FILE_TYPES.has(entry.type) || !assembler.wants(name)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      entry.on('end', () => {
        try {
          assembler.add(name, Buffer.concat(chunks), `${archive}:${entry.path}`);
        } catch (e) {
          failure ??= e;
        }
      });
    },
  });
  // Any failure (the tar parser's, or a check on a member) is kept and the stream stopped.
  parser.on('error', (e: unknown) => {
    failure ??= e;
  });
  const parsed = new Promise<void>((resolve) => {
    parser.on('end', () => resolve());
    parser.on('error', () => resolve());
  });
  try {
    await pipeline(
      createReadStream(archive),
      createGunzip(),
      async (tarBytes: AsyncIterable<Buffer>) => {
        for await (const chunk of tarBytes) {
          parser.write(chunk);
          if (failure !== undefined) return;
        }
        parser.end();
        await parsed;
      },
    );
  } catch (e) {
    failure ??= e;
  }
  if (isUserError(failure)) throw failure;
  if (failure !== undefined) {
    throw datasetCorruptError(
      archive,
      `cannot read the archive (${errorMessage(failure)}); the download is probably incomplete`,
    );
  }
  const missing = assembler.firstMissing();
  if (missing !== undefined) {
    throw datasetCorruptError(archive, `the archive lacks ${CIFAR10_FOLDER}/${missing}`, {
      missing,
    });
  }
}
