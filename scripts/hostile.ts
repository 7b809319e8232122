/**
 * `npm run hostile`: writes the hostile files of `tests/fixtures/hostile-files.ts` (and a 108 MP
 * JPEG) to a temporary folder, runs `cnn-classroom predict --json` on each in its own process
 * under `/usr/bin/time -v`, and prints, per file, the outcome (class or error id), the wall time
 * and the peak resident memory, as JSON lines and then a table. Issue 19's goal: every file
 * refused or answered within 5 s and 1.5 GB. The first file is an ordinary photo: its time is the
 * process's start-up, and each file's own cost is reported beyond it.
 *
 * Options: `--model <id>` (default lenet-mnist), `--keep` keeps the folder.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../src/config.ts';
import {
  blackPng,
  flatImage,
  manyFrameGif,
  manyScanJpeg,
  tiffBomb,
} from '../tests/fixtures/hostile-files.ts';

const run = promisify(execFile);
const GOAL_SECONDS = 5;
const GOAL_RSS_MB = 1500;

const args = process.argv.slice(2);
const model = args.includes('--model') ? (args[args.indexOf('--model') + 1] ?? '') : 'lenet-mnist';

const files: [name: string, make: () => Promise<Buffer> | Buffer][] = [
  // The baseline: the process's own start-up (tsx, TF.js, the model) on an ordinary small photo.
  [
    'baseline-photo.png',
    () =>
      sharp({ create: { width: 640, height: 480, channels: 3, background: '#f0f0f0' } })
        .composite([
          {
            input: Buffer.from(
              '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><text x="250" y="380" font-size="360" font-family="sans-serif">7</text></svg>',
            ),
          },
        ])
        .png()
        .toBuffer(),
  ],
  ['tiff-1000-bands.tif', () => tiffBomb({ width: 6300, height: 6300, samples: 1000, bits: 8 })],
  [
    'tiff-200-bands.tif',
    () => tiffBomb({ width: 2000, height: 2000, samples: 200, bits: 8, rowsPerStrip: 4 }),
  ],
  [
    'tiff-float.tif',
    () => tiffBomb({ width: 4000, height: 4000, samples: 3, bits: 32, sampleFormat: 3 }),
  ],
  [
    'tiff-16bit-rgb.tif',
    () => tiffBomb({ width: 3000, height: 3000, samples: 3, bits: 16, rowsPerStrip: 16 }),
  ],
  ['jpeg-3000-scans.jpg', () => manyScanJpeg(4000, 3000, 3000)],
  ['jpeg-30000-scans.jpg', () => manyScanJpeg(1000, 1000, 30_000)],
  ['png-1x40M.png', () => blackPng(1, 40_000_000)],
  ['png-40Mx1.png', () => blackPng(40_000_000, 1)],
  ['png-16MP.png', () => flatImage('png', 4000, 4000)],
  ['avif-40MP.avif', () => flatImage('avif', 8000, 5000)],
  ['avif-16MP.avif', () => flatImage('avif', 4000, 4000)],
  ['webp-40MP.webp', () => flatImage('webp', 8000, 5000)],
  ['webp-16MP.webp', () => flatImage('webp', 4000, 4000)],
  ['gif-100k-frames.gif', () => manyFrameGif(100_000, 4000, 4000)],
  [
    'jpeg-108MP.jpg',
    () =>
      sharp({ create: { width: 12_000, height: 9000, channels: 3, background: '#a05030' } })
        .jpeg({ quality: 85 })
        .toBuffer(),
  ],
  [
    'jpeg-108MP-progressive.jpg',
    () =>
      sharp({ create: { width: 12_000, height: 9000, channels: 3, background: '#a05030' } })
        .jpeg({ quality: 85, progressive: true })
        .toBuffer(),
  ],
];

interface Row {
  file: string;
  bytes: number;
  outcome: string;
  seconds: number;
  /** Seconds beyond the baseline's (the process start-up): what the file itself cost. */
  fileSeconds: number;
  peakRssMb: number;
  withinGoal: boolean;
}

const dir = await mkdtemp(path.join(tmpdir(), 'hostile-'));
const rows: Row[] = [];
let baseline: number | undefined;
try {
  for (const [name, make] of files) {
    const bytes = await make();
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    const started = performance.now();
    let stdout = '';
    let stderr = '';
    try {
      ({ stdout, stderr } = await run(
        '/usr/bin/time',
        [
          '-v',
          path.join(PROJECT_ROOT, 'bin/cnn-classroom'),
          'predict',
          '--json',
          '--model',
          model,
          file,
        ],
        { maxBuffer: 1 << 24, env: { ...process.env, LOG_LEVEL: 'silent' } },
      ));
    } catch (e) {
      // predict exits 1 when an input was refused; its output is still there.
      const err = e as { stdout?: string; stderr?: string };
      stdout = err.stdout ?? '';
      stderr = err.stderr ?? '';
    }
    const seconds = (performance.now() - started) / 1000;
    const rssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN);
    let outcome = 'no output';
    const line = stdout.trim().split('\n').at(-1);
    if (line) {
      const json = JSON.parse(line) as { error?: { code?: string }; label?: string };
      outcome = json.error?.code ? `refused: ${json.error.code}` : `answered: ${json.label ?? '?'}`;
    }
    const peakRssMb = Math.round(rssKb / 1024);
    baseline ??= seconds;
    const fileSeconds = Math.max(0, seconds - baseline);
    const row = {
      file: name,
      bytes: bytes.length,
      outcome,
      seconds: Math.round(seconds * 100) / 100,
      fileSeconds: Math.round(fileSeconds * 100) / 100,
      peakRssMb,
      withinGoal: fileSeconds <= GOAL_SECONDS && peakRssMb <= GOAL_RSS_MB,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
} finally {
  if (!args.includes('--keep')) await rm(dir, { recursive: true, force: true });
  else console.error(`files kept in ${dir}`);
}

const table = new Table({
  head: ['file', 'bytes', 'outcome', 's', 's beyond start-up', 'peak RSS MB', 'goal'],
});
for (const r of rows) {
  table.push([
    r.file,
    r.bytes,
    r.outcome,
    r.seconds,
    r.fileSeconds,
    r.peakRssMb,
    r.withinGoal ? 'ok' : 'MISSED',
  ]);
}
console.log(table.toString());
process.exitCode = rows.every((r) => r.withinGoal) ? 0 : 1;
