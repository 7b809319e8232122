/**
 * A stand-in trainer worker for `job-process-orphan.test.ts`: runs one long job on the banded
 * fixture with `runJobInChild` and prints `child <pid>` and `progress` lines, until the test
 * kills it with SIGKILL (as a worker is killed by the OOM killer or `kill -9`).
 * Usage: `node --import tsx orphan-parent.ts <dataDir> <outDir>`.
 */
import path from 'node:path';
import { runJobInChild } from '../../../src/jobs/run-in-child.ts';
import { FIXTURE_SPEC } from './trainer-fixture.ts';

const [dataDir, outDir] = process.argv.slice(2);
if (!dataDir || !outDir) throw new Error('usage: orphan-parent.ts <dataDir> <outDir>');
let reported = false;
await runJobInChild(
  {
    ...FIXTURE_SPEC,
    model: 'lenet-mnist',
    dataDir,
    epochs: 500,
    outputDir: path.join(outDir, 'staging'),
    checkpointDir: path.join(outDir, 'checkpoint'),
  },
  {
    signal: new AbortController().signal,
    callbacks: {
      onSpawn: (pid) => console.log(`child ${pid}`),
      onProgress: () => {
        if (reported) return;
        reported = true;
        console.log('progress');
      },
    },
  },
);
