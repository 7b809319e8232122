import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { writeBandedIdx } from '../fixtures/datasets/banded-idx.ts';

const BIN = path.join(PROJECT_ROOT, 'bin', 'cnn-classroom');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-dotenv-'));
  await writeBandedIdx(path.join(tmp, 'shared'), 'mnist', { train: 64, test: 20 });
  await mkdir(path.join(tmp, 'work'));
  // The data set is only in the shared folder, and only .env names it.
  await writeFile(
    path.join(tmp, 'work', '.env'),
    `CNN_SHARED_DATA=${path.join(tmp, 'shared')}\nLOG_LEVEL=silent\n`,
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the command line reads .env', () => {
  it('trains from CNN_SHARED_DATA set in .env of the working folder', async () => {
    const env = { ...process.env };
    delete env.CNN_SHARED_DATA;
    delete env.LOG_LEVEL;
    const args = [
      ...['train', 'lenet-mnist', '--epochs', '1', '--batch', '32', '--workers', '1'],
      ...['--no-augment', '--no-outliers', '--no-calibrate', '--data-dir', path.join(tmp, 'empty')],
      ...['--out', path.join(tmp, 'models'), '--checkpoint-dir', path.join(tmp, 'checkpoints')],
    ];
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(BIN, args, { cwd: path.join(tmp, 'work'), env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('training lenet-mnist on 64 images, 1 worker thread');
    expect(run.stdout).toContain('test accuracy on 20 images');
    const meta = JSON.parse(
      await readFile(path.join(tmp, 'models', 'lenet-mnist', 'meta.json'), 'utf8'),
    ) as { testSamples: number };
    expect(meta.testSamples).toBe(20);
  }, 120_000);
});
