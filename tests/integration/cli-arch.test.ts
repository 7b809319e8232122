/** `bin/cnn-classroom arch` and `compare` end to end, over a models folder holding the shipped LeNet. */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { writeClassModels } from '../fixtures/class-models.ts';
import { isPng } from '../unit/core/helpers.ts';

const run = promisify(execFile);
const BIN = path.join(PROJECT_ROOT, 'bin', 'cnn-classroom');
/** Quick measurements: the figures' size is not under test. */
const QUICK = ['--runs', '3', '--batch', '50'];
let tmp: string;
let modelsDir: string;

async function cli(
  args: string[],
  models = modelsDir,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(BIN, args, {
      cwd: tmp,
      env: { ...process.env, MODELS_DIR: models, DATA_DIR: tmp, LOG_LEVEL: 'silent' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return err;
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-arch-'));
  modelsDir = path.join(tmp, 'models');
  await cp(path.join(PROJECT_ROOT, 'models', 'lenet-mnist'), path.join(modelsDir, 'lenet-mnist'), {
    recursive: true,
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('bin/cnn-classroom arch', () => {
  it('reports LeNet’s 44,426 parameters, its layers and measured speed as JSON, and writes the PNG', async () => {
    const png = path.join(tmp, 'arch.png');
    const { code, stdout } = await cli(['arch', 'lenet-mnist', '--json', '--png', png, ...QUICK]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as {
      model: string;
      params: { total: number; trainable: number; nonTrainable: number };
      macs: number;
      flops: number;
      weightFileBytes: number;
      layers: { name: string; macs: number }[];
      latency: {
        backend: string;
        msPerImage: number;
        imagesPerSecond: number;
        throughputImages: number;
      };
    };
    expect(r.model).toBe('lenet-mnist');
    expect(r.params).toEqual({ trainable: 44_426, nonTrainable: 0, total: 44_426 });
    expect(r.macs).toBe(281_640);
    expect(r.flops).toBe(2 * r.macs);
    expect(r.weightFileBytes).toBe(44_426 * 4);
    expect(r.layers.map((l) => l.name)).toEqual([
      'conv1',
      'pool1',
      'conv2',
      'pool2',
      'flatten',
      'fc1',
      'fc2',
      'probs',
    ]);
    expect(r.latency.msPerImage).toBeGreaterThan(0);
    expect(r.latency.imagesPerSecond).toBeGreaterThan(0);
    expect(r.latency.throughputImages).toBe(50);
    expect(isPng(await readFile(png))).toBe(true);
  });

  it('prints the layer table as text by default', async () => {
    const { code, stdout } = await cli(['arch', 'lenet-mnist', ...QUICK]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/│ conv1\s+│ Conv2D\s+│ 24×24×6\s+│\s+156 │\s+86,400 │/);
    expect(stdout).toMatch(/│ total\s+│.*44,426 │\s+281,640 │/);
    expect(stdout).toContain('ms per image');
  });

  it('refuses an unknown model, listing the installed ones', async () => {
    const { code, stdout, stderr } = await cli(['arch', 'alexnet-literal', ...QUICK]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe(
      'error: model.unknown: unknown model "alexnet-literal"; known: lenet-mnist',
    );
  });

  it('names the command that trains a model train knows but that is not installed', async () => {
    const { code, stdout, stderr } = await cli(['arch', 'alexnet-cifar10', ...QUICK]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe(
      'error: model.unknown: model "alexnet-cifar10" is not trained yet: bin/cnn-classroom train alexnet-cifar10 --data-dir <data>',
    );
  });

  it('prints its error as JSON with --json, exit status 1', async () => {
    const { code, stdout, stderr } = await cli(['arch', 'nosuch', '--json', ...QUICK]);
    expect(code).toBe(1);
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({
      error: {
        code: 'model.unknown',
        message: 'unknown model "nosuch"; known: lenet-mnist',
      },
    });
  });
});

describe('bin/cnn-classroom compare', () => {
  it('reports every model with the accuracy of its meta.json, size and speed, and writes the PNG', async () => {
    const png = path.join(tmp, 'compare.png');
    const { code, stdout } = await cli(['compare', '--json', '--png', png, ...QUICK]);
    expect(code).toBe(0);
    const meta = JSON.parse(
      await readFile(path.join(modelsDir, 'lenet-mnist', 'meta.json'), 'utf8'),
    ) as { testAccuracy: number; testSamples: number };
    const r = JSON.parse(stdout) as { backend: string; models: Record<string, unknown>[] };
    expect(r.backend).toMatch(/^(wasm|tensorflow|cpu)$/);
    expect(r.models).toEqual([
      expect.objectContaining({
        id: 'lenet-mnist',
        dataset: 'mnist',
        testAccuracy: meta.testAccuracy,
        testSamples: meta.testSamples,
        params: 44_426,
        macs: 281_640,
        weightFileBytes: 44_426 * 4,
        msPerImage: expect.any(Number) as unknown,
        imagesPerSecond: expect.any(Number) as unknown,
      }),
    ]);
    expect(isPng(await readFile(png))).toBe(true);
  });
});

describe('bin/cnn-classroom compare with quantized weights', () => {
  it('gives their quantization as meta.json has it, marks their size and sizes in decimal MB', async () => {
    const models = path.join(tmp, 'class-models');
    await writeClassModels(models);
    const meta = JSON.parse(
      await readFile(path.join(models, 'tiny-fashion', 'meta.json'), 'utf8'),
    ) as { quantization: Record<string, unknown> };

    const json = await cli(['compare', '--json', ...QUICK], models);
    const text = await cli(['compare', ...QUICK], models);

    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout) as {
      models: {
        id: string;
        quantization: unknown;
        weightFileBytes: number;
        weightFileMB: number;
      }[];
    };
    expect(r.models.map((m) => [m.id, m.quantization])).toEqual([
      ['tiny-cifar10', null],
      ['tiny-fashion', meta.quantization],
    ]);
    expect(meta.quantization).toMatchObject({ dtype: 'uint8' });
    for (const m of r.models) expect(m.weightFileMB).toBe(m.weightFileBytes / 1e6);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/│ tiny-fashion .*\(uint8\) │/);
    expect(text.stdout).toContain('tiny-fashion: weights stored as uint8');
  });
});
