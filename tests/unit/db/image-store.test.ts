import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createImageStore } from '../../../src/db/image-store.ts';

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('image store', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-images-'));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stores bytes under images/ab/cd/<sha256>.<ext> and reads them back', async () => {
    const bytes = Buffer.from('a photo of a seven');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const store = createImageStore(dataDir);

    const stored = await store.put(bytes, 'PNG');

    expect(stored).toEqual({
      sha256,
      relativePath: `images/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}.png`,
      absolutePath: path.join(
        dataDir,
        'images',
        sha256.slice(0, 2),
        sha256.slice(2, 4),
        `${sha256}.png`,
      ),
      bytes: bytes.length,
      created: true,
    });
    expect(await store.read(sha256, 'png')).toEqual(bytes);
  });

  it('writes identical bytes once, even when stored at the same time', async () => {
    const store = createImageStore(dataDir);
    const bytes = Buffer.alloc(64 * 1024, 7);

    const results = await Promise.all(Array.from({ length: 5 }, () => store.put(bytes, 'jpeg')));
    const later = await store.put(bytes, 'jpg');

    expect(new Set(results.map((r) => r.relativePath)).size).toBe(1);
    expect(later.created).toBe(false);
    expect(later.relativePath.endsWith('.jpg')).toBe(true);
    // One file and no temporary files left behind.
    expect(await listFiles(dataDir)).toEqual([later.relativePath]);
  });

  it('keeps different bytes apart', async () => {
    const store = createImageStore(dataDir);

    const a = await store.put(Buffer.from('a'), 'png');
    const b = await store.put(Buffer.from('b'), 'png');

    expect(a.sha256).not.toBe(b.sha256);
    expect(await listFiles(dataDir)).toEqual([a.relativePath, b.relativePath].sort());
  });

  it('answers undefined for an image it does not hold', async () => {
    expect(await createImageStore(dataDir).read('0'.repeat(64), 'png')).toBeUndefined();
  });

  it('refuses extensions and digests that could escape the folder', async () => {
    const store = createImageStore(dataDir);

    await expect(store.put(Buffer.from('x'), '../../etc')).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    expect(() => store.relativePathOf('../x', 'png')).toThrow(/SHA-256/);
  });
});
