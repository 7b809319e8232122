/**
 * issue 16: the command line's `/retrain lenet-mnist with=class`: `labels import` of a generated
 * class, then `retrain lenet-mnist --with class --worker` runs the job in a child process of an
 * in-process worker and prints the chat's final text; too few photos are refused with the count.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { STUDENTS, STUDENT_PATTERN, writeClassFolder } from '../fixtures/class-photos.ts';
import { writeBandedIdx } from '../fixtures/datasets/banded-idx.ts';

const run = promisify(execFile);
let root: string;
let dataDir: string;

function cli(args: string[], env: Record<string, string> = {}) {
  return run(path.join(PROJECT_ROOT, 'bin', 'cnn-classroom'), args, {
    env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '', CNN_SHARED_DATA: '', ...env },
  });
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cli-class-'));
  dataDir = path.join(root, 'data');
  await writeBandedIdx(dataDir, 'mnist', { train: 600, test: 100 });
  await writeClassFolder(path.join(root, 'class'), STUDENTS.slice(0, 5));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('retrain --with class from the command line', () => {
  it('imports the class, refuses below CLASS_MIN_PHOTOS with the count, then fine-tunes and reports', async () => {
    await cli(['labels', 'import', path.join(root, 'class'), '--student-pattern', STUDENT_PATTERN]);
    const refused = await cli(['retrain', 'lenet-mnist', '--with', 'class'], {
      CLASS_MIN_PHOTOS: '80',
    }).catch((e: unknown) => e as { code: number; stderr: string });
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toMatch(
      /^error: classdata\.not_enough: Not enough labelled class photos yet: 50 of the 80 needed \(30 more\)\. To get more: .*labels import <dir>\.$/m,
    );

    const { stdout } = await cli([
      'retrain',
      'lenet-mnist',
      '--with',
      'class',
      '--epochs',
      '1',
      '--batch',
      '32',
      '--worker',
      '--json',
    ]);
    const { job } = JSON.parse(stdout) as {
      job: {
        state: string;
        version: string;
        params: Record<string, unknown>;
        result: {
          promoted: boolean;
          classFinetune: {
            photos: number;
            before: { classHeldOut: number; mnistTest: number };
            after: { classHeldOut: number; mnistTest: number };
            heldOutCorrect: { before: number; after: number };
            promote: boolean;
          };
        };
      };
    };
    expect(job).toMatchObject({
      state: 'succeeded',
      version: '1',
      params: { with: 'class', epochs: 1, batch: 32 },
    });
    const c = job.result.classFinetune;
    expect(c.photos).toBe(50);
    expect(job.result.promoted).toBe(c.promote);
    const meta = JSON.parse(
      await readFile(path.join(dataDir, 'models', 'lenet-mnist', '1', 'meta.json'), 'utf8'),
    ) as { testAccuracy: number; classFinetune: typeof c & { datasetFingerprint: string } };
    expect(meta.classFinetune).toMatchObject({
      photos: 50,
      before: c.before,
      after: c.after,
      heldOutCorrect: c.heldOutCorrect,
    });
    expect(meta.testAccuracy).toBe(c.after.mnistTest);
    const db = await openDatabase({ DATA_DIR: dataDir });
    try {
      const row = await db.modelVersions.get('lenet-mnist', '1');
      expect(row?.datasetFingerprint).toBe(meta.classFinetune.datasetFingerprint);
      expect((await db.modelVersions.getActive('lenet-mnist'))?.version ?? '0').toBe(
        c.promote ? '1' : '0',
      );
    } finally {
      await db.close();
    }
  }, 240_000);
});
