/** `bin/cnn-classroom versions | rollback | jobs --json`: the chat's trainer code from a shell. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';

const run = promisify(execFile);
let dataDir: string;

async function cli(...args: string[]): Promise<unknown> {
  const { stdout } = await run(path.join(PROJECT_ROOT, 'bin', 'cnn-classroom'), args, {
    env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
  });
  return JSON.parse(stdout) as unknown;
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
});
