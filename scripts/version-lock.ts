/**
 * How long a student's submission waits while a trainer worker stores a large model version
 * (an AlexNet version is one ~22 MB weight shard) on SQLite: a child process registers the
 * version (`addVersion`'s `register`, exclusive, with its files) while this process records a
 * submission every 10 ms and times each insert. Prints one JSON object, then a table.
 *
 *   npx tsx scripts/version-lock.ts [--mb 22] [--runs 2] [--one-transaction]
 *
 * `--one-transaction` stores the files as before migration 0009 did (every byte in the
 * transaction that writes the row: the plain `register` path), for the figure to compare with.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/db/database.ts';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '22' },
    runs: { type: 'string', default: '2' },
    child: { type: 'string' },
    version: { type: 'string', default: '1' },
    'one-transaction': { type: 'boolean', default: false },
  },
});
const mb = Number(values.mb);

if (values.child !== undefined) {
  // The worker's side: one version with a model.json and one big shard.
  const db = await openDatabase({ DATA_DIR: values.child });
  const shard = randomBytes(Math.round(mb * 1024 * 1024));
  const started = performance.now();
  await db.modelVersions.register({
    modelId: 'alexnet-cifar10',
    version: values.version,
    path: path.join(values.child, 'models', 'alexnet-cifar10', values.version),
    exclusive: !values['one-transaction'],
    files: [
      { name: 'model.json', bytes: Buffer.from('{}') },
      { name: 'group1-shard1of1.bin', bytes: shard },
    ],
  });
  process.stdout.write(`${JSON.stringify({ registerMs: performance.now() - started })}\n`);
  await db.close();
  process.exit(0);
}

interface Run {
  registerMs: number;
  inserts: number;
  busyErrors: number;
  maxWaitMs: number;
  p50WaitMs: number;
}

async function oneRun(dataDir: string, version: string): Promise<Run> {
  const db = await openDatabase({ DATA_DIR: dataDir });
  const user = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      import.meta.filename,
      '--child',
      dataDir,
      '--mb',
      String(mb),
      '--version',
      version,
      ...(values['one-transaction'] ? ['--one-transaction'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let finished = false;
  void done.then(() => (finished = true));
  const waits: number[] = [];
  let busyErrors = 0;
  while (!finished) {
    const t0 = performance.now();
    try {
      await db.submissions.recordRejection({
        userId: user.id,
        command: 'predict',
        errorCode: 'image.pdf',
      });
    } catch (e) {
      if (/busy|locked/i.test(String((e as Error).message))) busyErrors++;
      else throw e;
    }
    waits.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  await db.close();
  const sorted = [...waits].sort((a, b) => a - b);
  const registerMs = (JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { registerMs?: number })
    .registerMs;
  return {
    registerMs: Math.round(registerMs ?? NaN),
    inserts: waits.length,
    busyErrors,
    maxWaitMs: Math.round(sorted.at(-1) ?? 0),
    p50WaitMs: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
  };
}

const runs: Run[] = [];
// One file for every run, re-opened by each (docs/architecture.md, "SQLite from several
// processes": the SQLITE_NOTADB / SQLITE_CORRUPT once seen here came from migrate() unlocking it).
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'version-lock-'));
try {
  for (let i = 1; i <= Number(values.runs); i++) runs.push(await oneRun(dataDir, String(i)));
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
console.log(
  JSON.stringify({ mb, oneTransaction: values['one-transaction'], cpus: os.cpus().length, runs }),
);
console.log('run  register ms  inserts  SQLITE_BUSY  longest wait ms  median wait ms');
runs.forEach((r, i) =>
  console.log(
    `${String(i + 1).padEnd(4)} ${String(r.registerMs).padStart(11)} ${String(r.inserts).padStart(8)} ${String(r.busyErrors).padStart(12)} ${String(r.maxWaitMs).padStart(16)} ${String(r.p50WaitMs).padStart(15)}`,
  ),
);
