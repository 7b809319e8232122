import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { writeBandedIdx } from '../fixtures/datasets/banded-idx.ts';

const BIN = path.join(PROJECT_ROOT, 'bin', 'cnn-classroom');
let tmp: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `train`; with `killWhen`, sends SIGKILL as soon as that file exists. */
function train(args: string[], killWhen?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['train', ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, LOG_LEVEL: 'silent', CNN_SHARED_DATA: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = killWhen
      ? setInterval(() => {
          stat(killWhen).then(
            () => child.kill('SIGKILL'),
            () => undefined,
          );
        }, 50)
      : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-train-'));
  await writeBandedIdx(path.join(tmp, 'data'), 'fashion-mnist', { train: 400, test: 100 });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('train (CLI)', () => {
  it('a run killed after its first epoch leaves the shipped model untouched, and the same command resumes and finishes it', async () => {
    const out = path.join(tmp, 'models');
    const shipped = path.join(out, 'mobilenet-fashion');
    await mkdir(shipped, { recursive: true });
    const oldMeta = JSON.stringify({ id: 'mobilenet-fashion', placeholder: true });
    await writeFile(path.join(shipped, 'meta.json'), oldMeta);
    const checkpoints = path.join(tmp, 'checkpoints');
    const args = [
      'mobilenet-fashion',
      ...['--epochs', '3', '--batch', '64', '--data-dir', path.join(tmp, 'data')],
      ...['--out', out, '--checkpoint-dir', checkpoints, '--force'],
    ];

    const killed = await train(args, path.join(checkpoints, 'mobilenet-fashion', 'state.json'));
    expect(killed.code).toBeNull(); // killed by the signal
    expect(killed.stdout).toMatch(/epoch 1: loss/);
    expect(await readFile(path.join(shipped, 'meta.json'), 'utf8')).toBe(oldMeta);
    expect(await readdir(shipped)).toEqual(['meta.json']);

    const resumed = await train(args);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/resuming from .*: 1 of 3 epochs done/);
    expect(resumed.stdout).not.toMatch(/^epoch 1:/m);
    expect(resumed.stdout).toMatch(/^epoch 3:/m);
    expect(resumed.stdout).toMatch(/test accuracy on 100 images/);
    // By default every core trains, one worker thread each, with shards of at least 32 images.
    const cores = Math.min(availableParallelism(), 2);
    expect(resumed.stdout).toContain(
      `${cores} worker thread${cores === 1 ? '' : 's'} (wasm backend)`,
    );

    const meta = JSON.parse(await readFile(path.join(shipped, 'meta.json'), 'utf8')) as {
      training: { epochs: number; command: string; workers: number };
      testSamples: number;
      classNames: string[];
      preprocess: string;
    };
    expect(meta.training.epochs).toBe(3);
    expect(meta.testSamples).toBe(100);
    expect(meta.classNames[0]).toBe('T-shirt/top');
    expect(meta.preprocess).toBe('fashion-gray');
    expect(meta.training.command).toContain('train mobilenet-fashion --epochs 3 --batch 64');
    expect(meta.training.command).toContain(`--workers ${cores}`);
    expect(meta.training.workers).toBe(cores);
    const history = JSON.parse(await readFile(path.join(shipped, 'history.json'), 'utf8')) as {
      epoch: number;
    }[];
    expect(history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect((await sharp(path.join(shipped, 'history.png')).metadata()).format).toBe('png');
    expect((await readdir(shipped)).sort()).toEqual(
      ['group1-shard1of1.bin', 'history.json', 'history.png', 'meta.json', 'model.json'].sort(),
    );
  }, 300_000);

  it('does not resume a checkpoint of other settings or another architecture, and says so', async () => {
    const checkpoints = path.join(tmp, 'other-checkpoints');
    const base = [
      ...['--batch', '32', '--data-dir', path.join(tmp, 'data'), '--checkpoint-dir', checkpoints],
      ...['--out', path.join(tmp, 'other-models'), '--patience', '0'],
    ];
    const first = await train(['mobilenet-fashion', '--epochs', '1', ...base]);
    expect(first.code).toBe(0);

    const otherLr = await train(['mobilenet-fashion', '--epochs', '1', '--lr', '0.01', ...base]);
    expect(otherLr.code).toBe(0);
    expect(otherLr.stdout).toMatch(
      /not resuming .*mobilenet-fashion: it holds a run of other settings \(bin\/cnn-classroom train mobilenet-fashion --epochs 1 --batch 32 --lr 0\.003 /,
    );
    // ...and what differs, so the user need not compare two command lines.
    expect(otherLr.stdout).toMatch(/; learningRate 0\.003 \(now 0\.01\)\); it will be replaced/);
    expect(otherLr.stdout).toMatch(/^epoch 1:/m);

    // The same settings, but the checkpoint's weights are of another shape.
    const state = path.join(checkpoints, 'mobilenet-fashion', 'state.json');
    const saved = JSON.parse(await readFile(state, 'utf8')) as { weights: { shape: number[] }[] };
    saved.weights[0]!.shape = [1, 1, 1, 1];
    await writeFile(state, JSON.stringify(saved));
    const changed = await train(['mobilenet-fashion', '--epochs', '1', '--lr', '0.01', ...base]);
    expect(changed.stderr).toBe('');
    expect(changed.code).toBe(0);
    expect(changed.stdout).toMatch(/not resuming: damaged checkpoint|do not fit this model/);
    expect(changed.stdout).toMatch(/^epoch 1:/m);
  }, 300_000);

  it('resumes with the worker count of the checkpoint when --workers is not given', async () => {
    const checkpoints = path.join(tmp, 'worker-checkpoints');
    const base = [
      ...['mobilenet-fashion', '--epochs', '1', '--batch', '64', '--patience', '0'],
      ...['--data-dir', path.join(tmp, 'data'), '--checkpoint-dir', checkpoints],
      ...['--out', path.join(tmp, 'worker-models')],
    ];
    const first = await train([...base, '--workers', '1']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('1 worker thread (wasm backend)');
    // Without --workers the default would be min(cores, 64 / 32); the checkpoint's 1 is kept.
    const again = await train(base);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/resuming from .*: 1 of 1 epochs done/);
    expect(again.stdout).toContain('1 worker thread (wasm backend)');
  }, 300_000);

  it("refuses bad settings before loading any data, with commander's one-line errors", async () => {
    const bad = [
      [
        ['nosuch'],
        /value 'nosuch' is invalid for argument 'model'\. Allowed choices are lenet-mnist, /,
      ],
      [['mobilenet-fashion', '--schedule', 'linear'], /Allowed choices are cosine, step, constant/],
      [['mobilenet-fashion', '--lr', '0'], /expected a number above 0/],
      [['mobilenet-fashion', '--validation-split', '1.5'], /expected a share from 0 up to/],
      [['mobilenet-fashion', '--patience', '-1'], /expected 0 or a positive integer/],
      [['mobilenet-fashion', '--workers', '0'], /expected a positive integer/],
      [
        ['mobilenet-fashion', '--batch', '8', '--workers', '9'],
        /--workers 9 cannot split a batch of 8/,
      ],
      // An empty path (an unset shell variable) is not a fresh start.
      [['mobilenet-fashion', '--init-from', ''], /--init-from needs a saved model's folder/],
    ] as const;
    for (const [args, message] of bad) {
      const run = await train([...args]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/"level"|at .*\.ts:/);
    }
  }, 120_000);

  it('ships uint8 weights above the size limit with both accuracies in meta.json, also when re-run after the last epoch', async () => {
    const out = path.join(tmp, 'quantized-models');
    const shipped = path.join(out, 'mobilenet-fashion');
    const args = [
      'mobilenet-fashion',
      ...['--epochs', '1', '--batch', '32', '--data-dir', path.join(tmp, 'data')],
      ...['--out', out, '--checkpoint-dir', path.join(tmp, 'quantized-checkpoints')],
      ...['--quantize-above', '1000', '--force'],
    ];

    const first = await train(args);
    const again = await train(args); // every epoch done: straight to evaluation and saving

    for (const run of [first, again]) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/as float32, over the limit of 1,000 bytes: shipped as uint8/);
    }
    expect(again.stdout).toMatch(/resuming from .*: 1 of 1 epochs done/);
    expect(again.stdout).not.toMatch(/^epoch 1:/m);
    const meta = JSON.parse(await readFile(path.join(shipped, 'meta.json'), 'utf8')) as {
      testAccuracy: number;
      quantization: {
        dtype: string;
        float32TestAccuracy: number;
        float32Bytes: number;
        bytes: number;
      };
    };
    expect(meta.quantization.dtype).toBe('uint8');
    // MobileNet-like: 38,346 parameters, 2,954 of them in 1-D weights (batch norm, the dense bias) kept float32.
    expect(meta.quantization.float32Bytes).toBe(4 * 38_346);
    expect(meta.quantization.bytes).toBe(38_346 - 2_954 + 4 * 2_954);
    expect(meta.quantization.float32TestAccuracy).toBeGreaterThanOrEqual(0);
    expect(Math.abs(meta.testAccuracy - meta.quantization.float32TestAccuracy)).toBeLessThan(0.2);
    expect((await stat(path.join(shipped, 'group1-shard1of1.bin'))).size).toBe(
      meta.quantization.bytes,
    );
    const modelJson = JSON.parse(await readFile(path.join(shipped, 'model.json'), 'utf8')) as {
      weightsManifest: {
        weights: { dtype: string; shape: number[]; quantization?: { dtype: string } }[];
      }[];
    };
    for (const w of modelJson.weightsManifest[0]!.weights) {
      expect(w.dtype).toBe('float32');
      expect(w.quantization?.dtype).toBe(w.shape.length >= 2 ? 'uint8' : undefined);
    }
  }, 300_000);
});
