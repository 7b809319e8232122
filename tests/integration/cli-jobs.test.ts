/**
 * `bin/cnn-classroom versions | versions prune | rollback | jobs --json`: the chat's trainer code
 * from a shell.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';

const run = promisify(execFile);
let dataDir: string;

async function cliText(...args: string[]): Promise<string> {
  const { stdout } = await run(path.join(PROJECT_ROOT, 'bin', 'cnn-classroom'), args, {
    env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
  });
  return stdout;
}

async function cli(...args: string[]): Promise<unknown> {
  return JSON.parse(await cliText(...args)) as unknown;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'cli-jobs-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('the trainer from the command line', () => {
  it('versions --json names the served version; rollback serves an earlier one', async () => {
    expect(await cli('versions', 'lenet-mnist', '--json')).toMatchObject({
      model: 'lenet-mnist',
      served: '0',
      versions: [{ version: '0', createdBy: 'shipped', served: true }],
    });
    // the table names the shipped version's author in words (--json keeps the stored value)
    const table = await cliText('versions', 'lenet-mnist');
    expect(table).toContain('shipped with the bot');
    expect(table).not.toMatch(/\bshipped\b(?! with the bot)/);
    const db = await openDatabase({ DATA_DIR: dataDir });
    await db.modelVersions.register({
      modelId: 'lenet-mnist',
      version: '1',
      path: path.join(dataDir, 'models', 'lenet-mnist', '1'),
      testAccuracy: 0.5,
      createdBy: 'cli',
    });
    await db.modelVersions.activate('lenet-mnist', '1');
    await db.close();
    expect(await cli('versions', 'lenet-mnist', '--json')).toMatchObject({ served: '1' });
    expect(await cli('rollback', 'lenet-mnist', '--json')).toEqual({
      model: 'lenet-mnist',
      from: '1',
      to: '0',
      changed: true,
    });
    expect(await cli('versions', 'lenet-mnist', '--json')).toMatchObject({ served: '0' });
    expect(await cli('jobs', '--json')).toEqual({ jobs: [] });
  }, 150_000);

  it('versions prune --dry-run shows, then prune removes the old versions with their folders', async () => {
    // Versions 2..4 trained after the first test; 0 served (rolled back there).
    const db = await openDatabase({ DATA_DIR: dataDir });
    for (const n of [2, 3, 4]) {
      const dir = path.join(dataDir, 'models', 'lenet-mnist', String(n));
      const bytes = Buffer.alloc(1000 * n, n);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'group1-shard1of1.bin'), bytes);
      await db.modelVersions.register({
        modelId: 'lenet-mnist',
        version: String(n),
        path: dir,
        exclusive: true,
        files: [{ name: 'group1-shard1of1.bin', bytes }],
      });
    }
    await db.close();
    const dry = await cli('versions', 'prune', 'lenet-mnist', '--keep', '1', '--dry-run', '--json');
    expect(dry).toMatchObject({ dryRun: true, dbBytes: 5000, diskBytes: 5000 });
    // 1 has no stored files and no folder (registered by path only): 0 bytes either way.
    expect((dry as { removed: { version: string }[] }).removed.map((r) => r.version)).toEqual([
      '1',
      '2',
      '3',
    ]);
    const done = (await cli('versions', 'prune', '--all', '--keep', '1', '--json')) as {
      removed: { version: string }[];
      kept: { version: string; reason: string }[];
      dbBytes: number;
    };
    expect(done.removed.map((r) => r.version)).toEqual(['1', '2', '3']);
    expect(done.kept).toEqual([
      { modelId: 'lenet-mnist', version: '0', reason: 'shipped' },
      { modelId: 'lenet-mnist', version: '4', reason: 'recent' },
    ]);
    expect(done.dbBytes).toBe(5000);
    expect(await cli('versions', 'lenet-mnist', '--json')).toMatchObject({
      versions: [{ version: '0' }, { version: '4' }],
    });
    await expect(
      run(path.join(PROJECT_ROOT, 'bin', 'cnn-classroom'), ['versions', 'prune', '--keep', '1'], {
        env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
      }),
    ).rejects.toMatchObject({
      stderr: expect.stringMatching(/name one model, or --all/) as unknown,
    });
  }, 150_000);

  it('retrain prints a line for a terminal, not the chat\'s "I\'ll update this message"', async () => {
    const out = await cliText('retrain', 'lenet-mnist', '--epochs', '1');
    expect(out).toBe('Job 1: lenet-mnist, epochs=1. Place in the queue: 1.\n');
    expect(await cli('jobs', '--json')).toMatchObject({
      jobs: [{ id: 1, state: 'queued', requester: 'cli' }],
    });
  }, 60_000);
});
