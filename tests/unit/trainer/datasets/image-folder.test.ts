import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../../src/config.ts';
import { appendLabelled, loadImageFolder } from '../../../../src/trainer/datasets/image-folder.ts';
import { MNIST_CLASS_NAMES } from '../../../../src/trainer/datasets/mnist.ts';

const digit = {
  preprocess: 'mnist-digit' as const,
  inputShape: [28, 28, 1] as [number, number, number],
};
let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'image-folder-'));
  dir = path.join(root, 'labelled');
  for (const d of ['3', '7']) {
    await mkdir(path.join(dir, d), { recursive: true });
    await copyFile(path.join(PROJECT_ROOT, 'img', `${d}.png`), path.join(dir, d, `${d}.png`));
  }
  await writeFile(path.join(dir, '7', 'notes.txt'), 'not a photo');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadImageFolder', () => {
  it('reads <class>/<photo> through the model pipeline as uint8 images, skipping what it refuses', async () => {
    const data = await loadImageFolder(dir, MNIST_CLASS_NAMES, digit);

    expect([data.count, data.height, data.width, data.channels]).toEqual([2, 28, 28, 1]);
    expect(Array.from(data.labels)).toEqual([3, 7]);
    expect(data.images.length).toBe(2 * 784);
    // The digit pipeline puts bright ink on a black background, as MNIST.
    expect(data.images[0]).toBe(0);
    expect(Math.max(...data.images.subarray(0, 784))).toBeGreaterThan(200);
    expect(data.skipped).toEqual([path.join('7', 'notes.txt')]);
    expect((await loadImageFolder(dir, MNIST_CLASS_NAMES, digit)).digest).toBe(data.digest);
  });

  it('refuses a folder that is not a class name, naming it', async () => {
    const bad = path.join(root, 'bad');
    await mkdir(path.join(bad, 'cat'), { recursive: true });
    await expect(loadImageFolder(bad, MNIST_CLASS_NAMES, digit)).rejects.toThrow(
      /"cat" is not a class of the data set/,
    );
  });

  it('appends the photos to a data set, repeated', async () => {
    const extra = await loadImageFolder(dir, MNIST_CLASS_NAMES, digit);
    const base = {
      images: new Uint8Array(784).fill(9),
      labels: Uint8Array.of(1),
      count: 1,
      height: 28,
      width: 28,
      channels: 1,
    };

    const all = appendLabelled(base, extra, 2);

    expect(all.count).toBe(5);
    expect(Array.from(all.labels)).toEqual([1, 3, 7, 3, 7]);
    expect(all.images[0]).toBe(9);
    expect(Array.from(all.images.subarray(3 * 784, 5 * 784))).toEqual(Array.from(extra.images));
  });
});
