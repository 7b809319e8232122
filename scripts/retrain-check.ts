/**
 * `npm run retrain-check`: issue 14's `npm start` check with the real data. Starts the bot as
 * `npm start` does (web chat only, no tokens, a temporary DATA_DIR, `CNN_SHARED_DATA` pointing
 * at the data folder with full MNIST), under `nice`; opens the web chat as the operator (the
 * token in the printed URL); sends `/retrain lenet-mnist epochs=1`; follows the progress message
 * through the page's long poll (`GET /api/updates`) while a student sends a digit photo every
 * couple of seconds; then checks that the new version is served without a restart.
 *
 * Prints JSON, then a table: the job's phases (queued -> first batch, the epoch, from the last
 * batch to the result: evaluation on the 10,000 test images, saving, promotion), progress edits,
 * test accuracy against the served version and the decision, the served version afterwards, and
 * photo reply latency idle vs during training (p50 / p95).
 *
 * Options: --data-dir DIR (../shared/data), --photos DIR (<data-dir>/real-digits), --idle N (10
 * photos before the job), --interval MS (2000 between photos while training), --epochs N (1),
 * --nice N (10), --keep (leave the temporary DATA_DIR).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { PROJECT_ROOT } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import type { WebAnswer } from '../src/adapters/web/server.ts';
import type { WebUpdatesAnswer } from '../src/adapters/web/updates.ts';
import { CookieJar } from '../tests/fakes/cookie-jar.ts';
import { freePort } from '../tests/fakes/free-port.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: path.join(PROJECT_ROOT, '..', 'shared', 'data') },
    photos: { type: 'string' },
    idle: { type: 'string', default: '10' },
    interval: { type: 'string', default: '2000' },
    epochs: { type: 'string', default: '1' },
    nice: { type: 'string', default: '10' },
    force: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const SHARED = path.resolve(values['data-dir']);
const PHOTOS = path.resolve(values.photos ?? path.join(SHARED, 'real-digits'));
const IDLE = Number(values.idle);
const INTERVAL = Number(values.interval);
const EPOCHS = Number(values.epochs);

const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

interface Photo {
  readonly name: string;
  readonly label: string;
  readonly bytes: Uint8Array;
}

interface PhotoResult {
  readonly ms: number;
  readonly phase: 'idle' | 'training' | 'after';
  readonly answer: string | undefined;
  readonly label: string;
}

async function main(): Promise<void> {
  const files = (await readdir(PHOTOS)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  if (files.length === 0) throw new Error(`no photos in ${PHOTOS}`);
  const loaded: Photo[] = await Promise.all(
    files.map(async (f) => ({
      name: f,
      label: f[0] ?? '?',
      bytes: new Uint8Array(await readFile(path.join(PHOTOS, f))),
    })),
  );
  // Round robin over the labels (0, 1, ... 9, 0, ...), so any run's photos cover every digit.
  const byLabel = new Map<string, Photo[]>();
  for (const p of loaded) byLabel.set(p.label, [...(byLabel.get(p.label) ?? []), p]);
  const photos: Photo[] = [];
  for (let i = 0; photos.length < loaded.length; i++) {
    for (const list of byLabel.values()) {
      const p = list[i];
      if (p) photos.push(p);
    }
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-retrain-check-'));
  const port = await freePort();
  const token = randomBytes(18).toString('base64url');
  const started = Date.now();
  const bot = spawn(
    'nice',
    [
      '-n',
      values.nice,
      process.execPath,
      path.join(PROJECT_ROOT, 'node_modules/tsx/dist/cli.mjs'),
      path.join(PROJECT_ROOT, 'src/main.ts'),
    ],
    {
      cwd: PROJECT_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? os.tmpdir(),
        DATA_DIR: dataDir,
        CNN_SHARED_DATA: SHARED,
        WEB_PORT: String(port),
        WEB_OPERATOR_TOKEN: token,
        // Bare photos answered by the model being retrained, so its new version shows.
        DEFAULT_MODEL: 'lenet-mnist',
        RATE_LIMIT_PER_MINUTE: '600',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  bot.stdout.on('data', (d: Buffer) => (output += d.toString()));
  bot.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => bot.once('exit', resolve));
  let result: Record<string, unknown> | undefined;
  try {
    while (!/web chat: http/.test(output)) {
      if (bot.exitCode !== null) throw new Error(`the bot exited:\n${output}`);
      if (Date.now() - started > 180_000) throw new Error(`the bot did not start:\n${output}`);
      await sleep(100);
    }
    const readyMs = Date.now() - started;
    const base = `http://127.0.0.1:${port}/`;
    const operator = new CookieJar();
    operator.take(await fetch(`${base}?token=${token}`, { redirect: 'manual' }));
    const student = new CookieJar();

    const say = async (jar: CookieJar, text: string, photo?: Photo): Promise<WebAnswer> => {
      const form = new FormData();
      form.append('text', text);
      form.append('language', 'en');
      if (photo) form.append('image', new Blob([photo.bytes]), photo.name);
      const res = await fetch(new URL('api/messages', base), {
        method: 'POST',
        body: form,
        headers: { cookie: jar.header },
      });
      jar.take(res);
      if (!res.ok) throw new Error(`POST /api/messages: HTTP ${res.status}`);
      return (await res.json()) as WebAnswer;
    };
    const results: PhotoResult[] = [];
    let next = 0;
    const sendPhoto = async (phase: PhotoResult['phase']): Promise<void> => {
      const photo = photos[next++ % photos.length]!;
      const t0 = performance.now();
      const answer = await say(student, '', photo);
      const caption = answer.replies.find((r) => r.type === 'image');
      const digit = caption && /^lenet-mnist: (\d)/.exec(caption.caption)?.[1];
      results.push({ ms: performance.now() - t0, phase, answer: digit, label: photo.label });
    };
    await say(student, '/start');
    for (let i = 0; i < IDLE; i++) {
      await sendPhoto('idle');
      await sleep(Math.min(INTERVAL, 500));
    }

    // The job, as the operator asks for it, and its message as the page follows it.
    const asked = Date.now();
    const queued = await say(
      operator,
      `/retrain lenet-mnist epochs=${EPOCHS}${values.force ? ' force' : ''}`,
    );
    const first = queued.replies[0];
    if (first?.type !== 'text' || first.messageId === undefined) {
      throw new Error(`unexpected /retrain answer: ${JSON.stringify(queued.replies)}`);
    }
    const job = Number(/(\d+)/.exec(first.text)?.[1]);
    const edits: { at: number; text: string }[] = [];
    let curvesAt: number | undefined;
    let done = false;
    const follow = (async () => {
      let after = 0;
      while (curvesAt === undefined && Date.now() - asked < 30 * 60_000) {
        const res = await fetch(new URL(`api/updates?after=${after}&wait=20000`, base), {
          headers: { cookie: operator.header },
        });
        const answer = (await res.json()) as WebUpdatesAnswer;
        after = answer.next;
        for (const u of answer.updates) {
          if (u.type === 'edit' && u.messageId === first.messageId) {
            edits.push({ at: Date.now(), text: u.text });
            if (/ (done|failed|cancelled)\b|готова|ошибк/.test(u.text)) done = true;
          } else if (u.type === 'image' && u.replyTo === first.messageId) {
            curvesAt = Date.now();
          }
        }
      }
    })();
    // The job's row, as the bot's database holds it: when its progress reached the last batch.
    const db = await openDatabase({ DATA_DIR: dataDir });
    let firstBatchAt: number | undefined;
    let lastBatchAt: number | undefined;
    const watch = (async () => {
      while (!done) {
        const run = await db.trainingRuns.get(job);
        const p = run?.progress as {
          epoch?: number;
          epochs?: number;
          batch?: number;
          batches?: number;
        } | null;
        if (p?.batch !== undefined) firstBatchAt ??= Date.now();
        if (p && p.epoch === p.epochs && p.batch === p.batches) lastBatchAt ??= Date.now();
        if (run && ['succeeded', 'failed', 'cancelled'].includes(run.status)) break;
        await sleep(250);
      }
    })();
    while (!done) {
      const t = Date.now();
      await sendPhoto('training');
      await sleep(Math.max(0, INTERVAL - (Date.now() - t)));
    }
    await watch;
    await Promise.race([follow, sleep(30_000)]);
    const run = await db.trainingRuns.get(job);
    const metrics = (run?.metrics ?? {}) as {
      testAccuracy?: number;
      servedAccuracy?: number | null;
      servedVersion?: string;
      promoted?: boolean;
      history?: { seconds: number; samplesPerSec: number; valAcc: number }[];
    };
    // Served without a restart: the same process answers the next photos with the new version.
    // A version that was kept (below the served one's accuracy) is served as the final message
    // advises, with /rollback to it.
    const expected = run?.version ?? '?';
    let rollbackText: string | null = null;
    if (run?.status === 'succeeded' && metrics.promoted !== true) {
      const back = await say(operator, `/rollback lenet-mnist ${expected}`);
      rollbackText = back.replies.map((r) => ('text' in r ? r.text : '')).join('\n');
    }
    const switchFrom = Date.now();
    const studentId = decodeURIComponent(student.get('cnn_web_id') ?? '').split('.')[0] ?? '';
    const studentRow = await db.users.findByPlatform('web', studentId);
    let servedAfter = '';
    let servedSwitchSeconds: number | null = null;
    for (let i = 0; i < 40 && servedAfter !== expected; i++) {
      await sendPhoto('after');
      const [last] = studentRow ? await db.submissions.listRecentByUser(studentRow.id, 1) : [];
      servedAfter = last?.modelVersion ?? servedAfter;
      if (servedAfter === expected) servedSwitchSeconds = round((Date.now() - switchFrom) / 1000);
      else await sleep(500);
    }
    const versions = await say(operator, '/versions lenet-mnist');
    const versionsText = versions.replies.map((r) => ('text' in r ? r.text : '')).join('\n');
    await db.close();

    const lat = (phase: PhotoResult['phase']) => {
      const xs = results.filter((r) => r.phase === phase);
      return {
        photos: xs.length,
        answered: xs.filter((r) => r.answer !== undefined).length,
        correct: xs.filter((r) => r.answer === r.label).length,
        p50Ms: Math.round(
          percentile(
            xs.map((r) => r.ms),
            50,
          ),
        ),
        p95Ms: Math.round(
          percentile(
            xs.map((r) => r.ms),
            95,
          ),
        ),
        maxMs: Math.round(Math.max(...xs.map((r) => r.ms))),
      };
    };
    const startedAt = run?.startedAt?.getTime();
    const finishedAt = run?.finishedAt?.getTime();
    const progressEdits = edits.filter((e) => /\(lenet-mnist\): epoch/.test(e.text)).length;
    result = {
      cpu: os.cpus()[0]?.model ?? '?',
      cores: os.cpus().length,
      loadAverage1m: round(os.loadavg()[0] ?? NaN, 2),
      nice: Number(values.nice),
      botReadySeconds: round(readyMs / 1000),
      job,
      status: run?.status,
      epochs: EPOCHS,
      queuedToStartSeconds: startedAt === undefined ? null : round((startedAt - asked) / 1000),
      startToFirstBatchSeconds:
        startedAt === undefined || firstBatchAt === undefined
          ? null
          : round((firstBatchAt - startedAt) / 1000),
      epochSeconds: metrics.history?.map((h) => round(h.seconds)) ?? [],
      samplesPerSec: metrics.history?.map((h) => Math.round(h.samplesPerSec)) ?? [],
      lastBatchToResultSeconds:
        lastBatchAt === undefined || finishedAt === undefined
          ? null
          : round((finishedAt - lastBatchAt) / 1000),
      jobSeconds:
        startedAt === undefined || finishedAt === undefined
          ? null
          : round((finishedAt - startedAt) / 1000),
      messageEdits: edits.length,
      progressEdits,
      finalText: edits.at(-1)?.text ?? null,
      curvesPosted: curvesAt !== undefined,
      testAccuracy: metrics.testAccuracy ?? null,
      servedVersionBefore: metrics.servedVersion ?? null,
      servedAccuracyBefore: metrics.servedAccuracy ?? null,
      decision: metrics.promoted ? 'promoted' : run?.status === 'succeeded' ? 'kept' : run?.status,
      newVersion: run?.version ?? null,
      rollbackText,
      servedVersionAfter: servedAfter || null,
      servedSwitchSeconds,
      versionsMarksNew: new RegExp(`^▶ v${expected} `, 'm').test(versionsText),
      botPid: bot.pid,
      botRestarted: bot.exitCode !== null,
      photos: { idle: lat('idle'), training: lat('training'), after: lat('after') },
    };
  } finally {
    bot.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000)]);
    if (bot.exitCode === null) bot.kill('SIGKILL');
    if (!values.keep) await rm(dataDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result, null, 2));
  const r = result as {
    photos: Record<
      string,
      {
        photos: number;
        answered: number;
        correct: number;
        p50Ms: number;
        p95Ms: number;
        maxMs: number;
      }
    >;
  } & Record<string, unknown>;
  const table = new Table({ head: ['figure', 'value'] });
  const rows: [string, unknown][] = [
    [
      'CPU',
      `${String(r.cpu)} x${String(r.cores)} (load ${String(r.loadAverage1m)}, nice ${String(r.nice)})`,
    ],
    ['queued -> started', `${String(r.queuedToStartSeconds)} s`],
    [
      'started -> first batch (child, MNIST, outlier set)',
      `${String(r.startToFirstBatchSeconds)} s (±2 s: heartbeats)`,
    ],
    ['epoch', `${String(r.epochSeconds)} s, ${String(r.samplesPerSec)} samples/s`],
    [
      'last batch -> result (evaluation, save, promotion)',
      `${String(r.lastBatchToResultSeconds)} s (±2 s)`,
    ],
    ['job total', `${String(r.jobSeconds)} s`],
    ['message edits (progress lines)', `${String(r.messageEdits)} (${String(r.progressEdits)})`],
    [
      'test accuracy new / served',
      `${String(r.testAccuracy)} / ${String(r.servedAccuracyBefore)} (v${String(r.servedVersionBefore)})`,
    ],
    ['decision', `${String(r.decision)} -> v${String(r.newVersion)}`],
    [
      r.rollbackText === null ? 'served after, no restart' : 'served after /rollback, no restart',
      `v${String(r.servedVersionAfter)} within ${String(r.servedSwitchSeconds)} s (/versions ▶: ${String(r.versionsMarksNew)}, bot restarted: ${String(r.botRestarted)})`,
    ],
  ];
  for (const [phase, p] of Object.entries(r.photos)) {
    rows.push([
      `photos ${phase}: n, p50 / p95 / max`,
      `${p.photos} (${p.answered} answered, ${p.correct} right), ${p.p50Ms} / ${p.p95Ms} / ${p.maxMs} ms`,
    ]);
  }
  table.push(...rows.map(([k, v]) => [k, String(v)]));
  console.log(table.toString());
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
