import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { garmentPhoto, plainPhoto, writeClassModels } from '../fixtures/class-models.ts';

const run = promisify(execFile);
const BIN = path.join(PROJECT_ROOT, 'bin', 'cnn-classroom');
let tmp: string;

interface Line {
  file: string;
  label?: string;
  classIndex?: number;
  confidence?: number;
  confident?: boolean;
  topK?: { classIndex: number; label: string; probability: number }[];
  error?: { code: string; message: string };
}

async function predict(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; lines: Line[]; stderr: string }> {
  try {
    const { stdout, stderr } = await run(BIN, ['predict', ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    });
    return { code: 0, lines: parse(stdout), stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, lines: parse(err.stdout), stderr: err.stderr };
  }
}

function parse(stdout: string): Line[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-predict-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('bin/cnn-classroom predict with the shipped LeNet', () => {
  it('gets every digit of img/ right, flags abrakadabra, and exits 0', async () => {
    const files = [...Array(10).keys()].map((d) => `img/${d}.png`).concat('img/abrakadabra.png');
    const { code, lines } = await predict([...files, '--json']);
    expect(code).toBe(0);
    expect(lines).toHaveLength(11);
    for (let d = 0; d < 10; d++) {
      const line = lines[d]!;
      expect(line.file).toBe(`img/${d}.png`);
      expect(line.label).toBe(String(d));
      expect(line.classIndex).toBe(d);
      expect(line.confident).toBe(true);
      expect(line.topK).toHaveLength(5);
      expect(line.topK![0]!.probability).toBe(line.confidence);
    }
    expect(lines[10]!.confident).toBe(false);
  }, 120_000);

  it('reads a folder, honours --top, and writes one chart per input', async () => {
    const chart = path.join(tmp, 'chart.png');
    const { code, lines } = await predict([
      'img/extra',
      'img/4.png',
      '--json',
      '--top',
      '2',
      '--chart',
      chart,
    ]);
    expect(code).toBe(0);
    expect(lines.map((l) => l.file)).toEqual(['img/extra/8-sideways.jpg', 'img/4.png']);
    expect(lines.map((l) => l.label)).toEqual(['8', '4']);
    for (const l of lines) {
      expect(l.topK).toHaveLength(2);
      const png = await readFile(`${chart.slice(0, -4)}-${path.parse(l.file).name}.png`);
      expect((await sharp(png).metadata()).format).toBe('png');
    }
  }, 120_000);

  it('answers bad inputs with their own error codes, goes on, and exits 1', async () => {
    await writeFile(path.join(tmp, 'empty.png'), '');
    await writeFile(path.join(tmp, 'notes.jpg'), 'this is a text file, not a photo\n');
    await writeFile(path.join(tmp, 'scan.png'), '%PDF-1.4\n%âãÏÓ\n1 0 obj\n');
    const { code, lines } = await predict([
      path.join(tmp, 'empty.png'),
      path.join(tmp, 'notes.jpg'),
      path.join(tmp, 'scan.png'),
      path.join(tmp, 'missing.png'),
      'img/7.png',
      '--json',
    ]);
    expect(code).toBe(1);
    expect(lines.map((l) => l.error?.code ?? l.label)).toEqual([
      'image.empty',
      'image.text',
      'image.pdf',
      'file.not_found',
      '7',
    ]);
  }, 120_000);
});

describe('bin/cnn-classroom predict --model with CIFAR-10 and Fashion-MNIST models', () => {
  it('preprocesses for each model and names its classes, charts included', async () => {
    const models = path.join(tmp, 'models');
    await writeClassModels(models);
    const blue = path.join(tmp, 'blue.png');
    const trousers = path.join(tmp, 'trousers.jpg');
    await writeFile(blue, await plainPhoto({ r: 10, g: 40, b: 200 }));
    await writeFile(trousers, await garmentPhoto('white', '#303030'));
    const chart = path.join(tmp, 'fashion-chart.png');

    const cifar = await predict(['--model', 'tiny-cifar10', blue, '--json'], {
      MODELS_DIR: models,
    });
    const fashion = await predict(
      ['--model', 'tiny-fashion', trousers, '--json', '--top', '2', '--chart', chart],
      { MODELS_DIR: models },
    );

    expect(cifar.code).toBe(0);
    expect(cifar.lines).toMatchObject([
      { file: blue, model: 'tiny-cifar10', label: 'ship', classIndex: 8 },
    ]);
    expect(fashion.code).toBe(0);
    expect(fashion.lines).toMatchObject([
      { file: trousers, model: 'tiny-fashion', label: 'Trouser', classIndex: 1, confident: true },
    ]);
    expect(fashion.lines[0]!.topK).toHaveLength(2);
    expect((await sharp(chart).metadata()).format).toBe('png');
  }, 120_000);
});

describe('bin/cnn-classroom predict --model with a model that is not installed', () => {
  const hint =
    'model "alexnet-cifar10" is not trained yet: bin/cnn-classroom train alexnet-cifar10 --data-dir <data>';

  it('names the command that trains a shipped recipe, as text and as JSON', async () => {
    const env = { MODELS_DIR: path.join(tmp, 'no-models'), DATA_DIR: tmp };
    const text = await predict(['--model', 'alexnet-cifar10', 'img/7.png'], env);
    const json = await predict(['--model', 'alexnet-cifar10', 'img/7.png', '--json'], env);

    expect(text.code).toBe(1);
    expect(text.stderr.trim()).toBe(`error: model.unknown: ${hint}`);
    expect(json.code).toBe(1);
    expect(json.lines).toEqual([{ error: { code: 'model.unknown', message: hint } }]);
  }, 120_000);
});
