import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isGzip,
  parseIdxImages,
  parseIdxLabels,
  readIdxPair,
  readMaybeGzipped,
} from '../../../../src/trainer/datasets/idx.ts';
import {
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

let root: string;
let fx: DatasetFixtures;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'idx-test-'));
  fx = await makeDatasetFixtures(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A 2x3 image file: 2 images of 1x3 pixels. */
function tinyImages(): Uint8Array {
  return Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 10, 20, 30, 40, 50, 60]);
}

describe('parseIdxImages', () => {
  it('reads the header and the pixels row-major', () => {
    const images = parseIdxImages(tinyImages(), 'tiny');

    expect(images).toMatchObject({ count: 2, rows: 1, cols: 3 });
    expect(Array.from(images.data)).toEqual([10, 20, 30, 40, 50, 60]);
    expect(images.data.byteOffset).toBe(0);
    expect(images.data.buffer.byteLength).toBe(6);
  });

  it('rejects a labels file passed as images, saying what it is', () => {
    const labels = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 1, 7]);

    expect(() => parseIdxImages(labels, 'x.idx')).toThrow(
      /x\.idx: bad IDX magic number 2049 \(a labels file\), expected 2051/,
    );
  });

  it('rejects a payload one byte short, with expected and actual sizes', () => {
    expect(() => parseIdxImages(tinyImages().subarray(0, 21), 'short.idx')).toThrow(
      expect.objectContaining({
        id: 'dataset.corrupt',
        params: { path: 'short.idx', expected: 6, actual: 5 },
      }),
    );
  });

  it('rejects images of zero width', () => {
    const zeroCols = tinyImages();
    zeroCols[15] = 0;

    expect(() => parseIdxImages(zeroCols, 'z')).toThrow(/image size 1x0/);
  });
});

describe('parseIdxLabels', () => {
  it('returns the labels after the 8-byte header', () => {
    const labels = parseIdxLabels(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 9, 0, 4]), 'l', 10);

    expect(Array.from(labels)).toEqual([9, 0, 4]);
  });

  it('rejects a label equal to the number of classes', () => {
    const bytes = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 10]);

    expect(() => parseIdxLabels(bytes, 'l', 10)).toThrow(
      expect.objectContaining({
        id: 'dataset.corrupt',
        params: { path: 'l', index: 1, label: 10 },
      }),
    );
  });
});

describe('isGzip', () => {
  it('recognizes the gzip magic bytes only', () => {
    expect(isGzip(gzipSync(Buffer.from('x')))).toBe(true);
    expect(isGzip(Uint8Array.from([0x1f]))).toBe(false);
    expect(isGzip(tinyImages())).toBe(false);
  });
});

describe('readMaybeGzipped', () => {
  it('reads gzipped and plain files to the same bytes', async () => {
    const gz = await readMaybeGzipped(
      path.join(fx.dataDir, 'mnist', 'train-labels-idx1-ubyte.gz'),
      'mnist',
    );
    const plain = await readMaybeGzipped(
      path.join(fx.dataDir, 'fashion-mnist', 'train-labels-idx1-ubyte'),
      'mnist',
    );

    expect(gz.equals(plain)).toBe(true);
    expect(gz.length).toBe(8 + 5);
  });

  it('reports a missing file as dataset.missing with the path and the download command', async () => {
    const file = path.join(root, 'nowhere', 'train-images-idx3-ubyte.gz');

    await expect(readMaybeGzipped(file, 'fashion-mnist')).rejects.toMatchObject({
      id: 'dataset.missing',
      params: { path: file, dataset: 'fashion-mnist' },
      message: expect.stringContaining('bin/cnn-classroom download fashion-mnist') as unknown,
    });
  });

  it('reports a truncated gzip stream as dataset.corrupt', async () => {
    await expect(readMaybeGzipped(fx.idx.truncatedGzip, 'mnist')).rejects.toMatchObject({
      id: 'dataset.corrupt',
      params: { path: fx.idx.truncatedGzip },
      message: expect.stringMatching(/cannot decompress/) as unknown,
    });
  });
});

describe('readIdxPair on broken files', () => {
  const labels = (): string => path.join(fx.dataDir, 'mnist', 'train-labels-idx1-ubyte.gz');

  it.each([
    ['badMagic', /bad IDX magic number 1234, expected 2051/],
    ['labelsMagicInImages', /bad IDX magic number 2049 \(a labels file\)/],
    ['shortHeader', /is 10 bytes long, shorter than the 16-byte IDX header/],
    [
      'truncatedPayload',
      /truncated: the header announces 5 images of 28x28, 3920 bytes .* but there are 3820/,
    ],
    ['trailingBytes', /trailing bytes after the data: .* 3920 bytes .* but there are 3923/],
    ['truncatedGzip', /cannot decompress the gzip data/],
  ] as const)('rejects %s as dataset.corrupt naming the file', async (fault, message) => {
    const file = fx.idx[fault];

    const error = await readIdxPair(file, labels(), 'mnist', 10).catch((e: unknown) => e);

    expect(error).toMatchObject({ id: 'dataset.corrupt', params: { path: file } });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(file)).toBe(true);
  });

  it('rejects an out-of-range label naming the labels file and the item', async () => {
    const images = path.join(fx.dataDir, 'mnist', 'train-images-idx3-ubyte.gz');

    await expect(readIdxPair(images, fx.idx.labelOutOfRange, 'mnist', 10)).rejects.toMatchObject({
      id: 'dataset.corrupt',
      params: { path: fx.idx.labelOutOfRange, index: 3, label: 10 },
    });
  });
});
