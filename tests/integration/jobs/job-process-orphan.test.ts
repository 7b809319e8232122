/**
 * A worker killed with SIGKILL (the OOM killer, `kill -9`, a crashed machine's container) cannot
 * kill its job's child process. The child must end by itself when its IPC channel closes: else it
 * trains on as an orphan, beside the worker that takes the job over, both writing the job's
 * checkpoint and staging folders (found trying it: `npm run worker`, `kill -9`, a new worker).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';

const PARENT = fileURLToPath(new URL('./orphan-parent.ts', import.meta.url));
let root: string;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'job-orphan-'));
  await writeBandedIdx(path.join(root, 'data'), 'mnist', { train: 1200, test: 100 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("a job's child process", () => {
  it('ends within seconds when its worker is killed with SIGKILL', async () => {
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', PARENT, path.join(root, 'data'), path.join(root, 'out')],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let child = 0;
    try {
      await vi.waitFor(
        () => {
          if (!out.includes('progress')) throw new Error(`no progress yet: ${out}`);
        },
        { timeout: 90_000, interval: 100 },
      );
      child = Number(/child (\d+)/.exec(out)?.[1]);
      expect(child).toBeGreaterThan(0);
      expect(alive(child)).toBe(true);
      parent.kill('SIGKILL');
      await vi.waitFor(() => expect(alive(child)).toBe(false), { timeout: 10_000, interval: 100 });
    } finally {
      if (parent.exitCode === null) parent.kill('SIGKILL');
      if (child > 0 && alive(child)) process.kill(child, 'SIGKILL');
    }
  }, 120_000);
});
