import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerQuantize } from '../../../src/cli/commands/quantize.ts';
import type { Config } from '../../../src/config.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { loadModel, saveModel } from '../../../src/ml/model-io.ts';
import { readModelMeta } from '../../../src/ml/model-meta.ts';
import { FASHION_MNIST_CLASS_NAMES } from '../../../src/trainer/datasets/mnist.ts';
import { buildColumnsModel, meta } from '../../fixtures/class-models.ts';
import { writeIdxPair } from '../../fixtures/datasets/banded-idx.ts';

let tmp: string;
let config: Config;

/** Fashion-MNIST-like test set: even images a bright centre band (Trouser), odd ones bright sides (Bag). */
async function writeTestSet(dir: string, count: number): Promise<void> {
  const trouser = (i: number): boolean => i % 2 === 0;
  const pixel = (i: number, p: number): number => {
    const x = p % 28;
    const bright = trouser(i) ? x >= 10 && x <= 17 : x <= 5 || x >= 22;
    return bright ? 200 + (i % 50) : i % 20;
  };
  // The loader wants the four files; the training split is never read here.
  for (const split of ['train', 't10k']) {
    await writeIdxPair(dir, split, count, pixel, (i) => (trouser(i) ? 1 : 8));
  }
}

async function quantize(...args: string[]): Promise<void> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
  registerQuantize(program, config);
  await program.parseAsync(['quantize', ...args], { from: 'user' });
}

beforeAll(async () => {
  await initBackend();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'quantize-cli-'));
  await mkdir(path.join(tmp, 'data', 'fashion-mnist'), { recursive: true });
  await writeTestSet(path.join(tmp, 'data', 'fashion-mnist'), 40);
  config = { MODELS_DIR: path.join(tmp, 'models'), DATA_DIR: path.join(tmp, 'data') } as Config;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('quantize (CLI)', () => {
  it('stores the weights as uint8 with both accuracies and sizes in meta.json, keeping the other files', async () => {
    const dir = path.join(config.MODELS_DIR, 'tiny-fashion');
    const model = buildColumnsModel();
    const text = meta(
      'tiny-fashion',
      'fashion-mnist',
      [28, 28, 1],
      'fashion-gray',
      FASHION_MNIST_CLASS_NAMES,
    );
    await saveModel(model, dir, { 'meta.json': text, 'history.json': '[]\n' });
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);

    await quantize('tiny-fashion');

    const printed = log.mock.calls.map((c) => String(c[0]));
    log.mockRestore();
    const m = await readModelMeta(dir);
    // Kernels at 1 byte a value, biases and batch norm kept at 4.
    const shipped = model.weights.reduce((sum, w) => {
      const n = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      return sum + (w.shape.length >= 2 ? n : 4 * n);
    }, 0);
    expect(m.quantization).toEqual({
      dtype: 'uint8',
      float32TestAccuracy: 1,
      float32Bytes: 4 * model.countParams(),
      bytes: shipped,
    });
    expect(m.testAccuracy).toBe(1);
    expect(m.testSamples).toBe(40);
    expect((await stat(path.join(dir, 'group1-shard1of1.bin'))).size).toBe(shipped);
    expect((await readdir(dir)).sort()).toEqual([
      'group1-shard1of1.bin',
      'history.json',
      'meta.json',
      'model.json',
    ]);
    expect(await readFile(path.join(dir, 'history.json'), 'utf8')).toBe('[]\n');
    expect((await loadModel(dir)).weights).toHaveLength(model.weights.length);
    expect(printed[0]).toMatch(/tiny-fashion: uint8, 7880 bytes \(float32 31400\)/);
    model.dispose();
  });

  it('refuses a model already quantized, and an unknown --dtype', async () => {
    await expect(quantize('tiny-fashion', '--dtype', 'float16')).rejects.toThrow(
      /already stored as uint8/,
    );
    await expect(quantize('tiny-fashion', '--dtype', 'int4')).rejects.toThrow(
      /expected one of uint8, float16/,
    );
  });
});
