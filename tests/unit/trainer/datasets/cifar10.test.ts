import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASS_NAMES, loadCifar10 } from '../../../../src/trainer/datasets/cifar10.ts';
import {
  CIFAR_RECORDS_PER_BATCH,
  cifarLabel,
  cifarPixel,
  FIXTURE_CIFAR_CLASS_NAMES,
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

const options = { systemDirs: [], recordsPerBatch: CIFAR_RECORDS_PER_BATCH } as const;

let root: string;
let fx: DatasetFixtures;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cifar-test-'));
  fx = await makeDatasetFixtures(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Value at (row, col, channel) of image i in an HWC `[n, 32, 32, 3]` array. */
const at = (images: Uint8Array, i: number, r: number, c: number, ch: number): number | undefined =>
  images[((i * 32 + r) * 32 + c) * 3 + ch];

describe('loadCifar10', () => {
  it('loads the five train batches in order from the tar.gz as [n, 32, 32, 3] RGB', async () => {
    const d = await loadCifar10('train', fx.dataDir, options);

    const n = 5 * CIFAR_RECORDS_PER_BATCH;
    expect(d).toMatchObject({ count: n, height: 32, width: 32, channels: 3 });
    expect(d.images.length).toBe(n * 32 * 32 * 3);
    expect(Array.from(d.labels)).toEqual(
      Array.from({ length: n }, (_, i) => cifarLabel('train', i)),
    );
    for (const [i, r, c, ch] of [
      [0, 0, 0, 0],
      [0, 0, 0, 2],
      [3, 5, 7, 1],
      [9, 31, 31, 2],
      [6, 31, 0, 0],
    ] as const) {
      expect(at(d.images, i, r, c, ch)).toBe(cifarPixel('train', i, r, c, ch));
    }
  });

  it('takes the class names from batches.meta.txt', async () => {
    const d = await loadCifar10('test', fx.dataDir, options);

    expect(d.count).toBe(CIFAR_RECORDS_PER_BATCH);
    expect(d.classNames).toEqual(FIXTURE_CIFAR_CLASS_NAMES);
    expect(at(d.images, 1, 12, 30, 1)).toBe(cifarPixel('test', 1, 12, 30, 1));
    expect(d.labels[1]).toBe(cifarLabel('test', 1));
  });

  it('reads an unpacked cifar-10-batches-bin folder, with the standard names without meta file', async () => {
    const d = await loadCifar10('test', fx.unpackedDataDir, options);

    expect(d.classNames).toEqual(CIFAR10_CLASS_NAMES);
    expect(at(d.images, 0, 1, 2, 2)).toBe(cifarPixel('test', 0, 1, 2, 2));
    expect(Array.from(d.labels)).toEqual([cifarLabel('test', 0), cifarLabel('test', 1)]);
  });

  it('expects the official 10000 records per batch by default', async () => {
    await expect(loadCifar10('test', fx.dataDir, { systemDirs: [] })).rejects.toMatchObject({
      id: 'dataset.corrupt',
      params: { expected: 10_000, actual: CIFAR_RECORDS_PER_BATCH },
      message: expect.stringContaining(
        'cifar-10-binary.tar.gz:cifar-10-batches-bin/test_batch.bin',
      ) as unknown,
    });
  });

  it('reports neither archive nor folder as dataset.missing with the download command', async () => {
    const dataDir = path.join(root, 'empty');

    await expect(loadCifar10('train', dataDir, options)).rejects.toMatchObject({
      id: 'dataset.missing',
      params: { path: path.join(dataDir, 'cifar-10', 'cifar-10-binary.tar.gz') },
      message: expect.stringContaining('bin/cnn-classroom download cifar-10') as unknown,
    });
  });

  it('reports a batch missing from the unpacked folder as dataset.missing', async () => {
    await expect(
      loadCifar10('train', fx.cifar.unpackedMissingBatch, options),
    ).rejects.toMatchObject({
      id: 'dataset.missing',
      params: {
        path: path.join(
          fx.cifar.unpackedMissingBatch,
          'cifar-10',
          'cifar-10-batches-bin',
          'data_batch_2.bin',
        ),
      },
    });
  });

  it.each([
    ['labelOutOfRange', 'test', /test_batch\.bin: label 10 of record 1 is outside 0\.\.9/],
    ['wrongRecordCount', 'test', /test_batch\.bin: holds 3 records, expected 2/],
    [
      'partialRecord',
      'test',
      /test_batch\.bin: is 6151 bytes, not a whole number of 3073-byte records/,
    ],
    ['missingBatch', 'train', /the archive lacks cifar-10-batches-bin\/data_batch_3\.bin/],
    ['truncatedGzip', 'train', /cannot read the archive \(unexpected end of file\)/],
    ['truncatedTar', 'test', /cannot read the archive \(TAR_BAD_ARCHIVE: Truncated input/],
    ['notGzip', 'test', /cannot read the archive \(incorrect header check\)/],
    ['badMeta', 'test', /batches\.meta\.txt: lists 3 class names, expected 10/],
  ] as const)(
    'rejects an archive with %s as dataset.corrupt naming the file',
    async (fault, split, message) => {
      const archive = path.join(fx.cifar[fault], 'cifar-10', 'cifar-10-binary.tar.gz');

      const error = await loadCifar10(split, fx.cifar[fault], options).catch((e: unknown) => e);

      expect(error).toMatchObject({ id: 'dataset.corrupt' });
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message.startsWith(archive)).toBe(true);
    },
  );

  it('accepts a train archive whose test batch is broken', async () => {
    const d = await loadCifar10('train', fx.cifar.labelOutOfRange, options);

    expect(d.count).toBe(5 * CIFAR_RECORDS_PER_BATCH);
  });

  it('rejects a non-positive recordsPerBatch', async () => {
    await expect(loadCifar10('test', fx.dataDir, { recordsPerBatch: 0 })).rejects.toThrow(
      RangeError,
    );
  });
});
