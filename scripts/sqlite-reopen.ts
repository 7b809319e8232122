/**
 * Re-opening one SQLite file while (or right after) another process stores a large model version
 * in it: counts how many `openDatabase` calls fail, and with which error, per mode.
 *
 *   nice -n 10 npx tsx scripts/sqlite-reopen.ts [--tries 20] [--mb 22] [--mode during|after|held]
 *
 * Each try spawns a child (scripts/lib/store-version-child.ts) that opens the database and
 * stores a version of `--mb` MB (1 MiB parts, each its own transaction, as the trainer worker
 * does). The parent meanwhile:
 * - `during`: opens the database, runs one query and closes it, again and again until the child
 *   exits;
 * - `after`: waits for the child to exit, then opens once;
 * - `held`: keeps one connection open during the write (like version-lock.ts), closes it when the
 *   child exits and opens again at once.
 * Then a fresh process counts the versions it finds whole (`complete`; `tries` expected).
 * Prints one JSON object.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/db/database.ts';
import { shardBytes } from './lib/store-version-child.ts';

const { values } = parseArgs({
  options: {
    tries: { type: 'string', default: '20' },
    mb: { type: 'string', default: '22' },
    mode: { type: 'string', default: 'during' },
    check: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const mb = Number(values.mb);
const bytes = Math.round(mb * 1024 * 1024);
/** The writer: stores one version through the repository API and exits. */
const CHILD = path.join(import.meta.dirname, 'lib', 'store-version-child.ts');

if (values.check !== undefined) {
  // A fresh process: which versions are complete (visible, every byte there).
  const db = await openDatabase({ DATA_DIR: values.check });
  const complete: string[] = [];
  for (const v of await db.modelVersions.list('alexnet-cifar10')) {
    const files = await db.modelVersions.readFiles('alexnet-cifar10', v.version);
    const shard = files.find((f) => f.name === 'group1-shard1of1.bin');
    if (shard !== undefined && shard.bytes.length === bytes) {
      const expected = shardBytes(Number(v.version), bytes);
      if (Buffer.from(shard.bytes).equals(expected)) complete.push(v.version);
    }
  }
  await db.close();
  process.stdout.write(`${JSON.stringify(complete)}\n`);
  process.exit(0);
}

const failures: Record<string, number> = {};
let opens = 0;
function count(e: unknown): void {
  const err = e as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  const key = String(err.code ?? err.cause?.code ?? err.message).slice(0, 80);
  failures[key] = (failures[key] ?? 0) + 1;
  process.stderr.write(`failed: ${key}: ${String(err.message).slice(0, 200)}\n`);
}

async function openOnce(dataDir: string): Promise<void> {
  opens++;
  try {
    const db = await openDatabase({ DATA_DIR: dataDir });
    try {
      await db.modelVersions.list('alexnet-cifar10');
    } finally {
      await db.close();
    }
  } catch (e) {
    count(e);
  }
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sqlite-reopen-'));
const tries = Number(values.tries);
let complete: number;
try {
  await (await openDatabase({ DATA_DIR: dataDir })).close();
  for (let i = 1; i <= tries; i++) {
    let held: Awaited<ReturnType<typeof openDatabase>> | undefined;
    if (values.mode === 'held') {
      opens++;
      held = await openDatabase({ DATA_DIR: dataDir }).catch((e: unknown) => {
        count(e);
        return undefined;
      });
    }
    const args = ['--import', 'tsx', CHILD, dataDir, String(i), String(bytes)];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    let finished = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        finished = true;
        resolve(code);
      }),
    );
    if (values.mode === 'during') {
      while (!finished) await openOnce(dataDir);
    }
    const code = await exited;
    if (code !== 0) count({ code: `child exit ${String(code)}` });
    await held?.close();
    await openOnce(dataDir);
  }
  const check = spawnSync(
    process.execPath,
    ['--import', 'tsx', import.meta.filename, '--check', dataDir, '--mb', String(mb)],
    { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
  complete = (JSON.parse(check.stdout.trim() || '[]') as string[]).length;
} finally {
  if (!values.keep) await rm(dataDir, { recursive: true, force: true });
}
console.log(
  JSON.stringify({
    mode: values.mode,
    mb,
    tries,
    opens,
    failures,
    // versions the children stored that a fresh process finds whole
    complete,
    ...(values.keep ? { dataDir } : {}),
  }),
);
