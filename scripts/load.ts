/**
 * `npm run load`: a lab session's burst against the fake Telegram Bot API server on 127.0.0.1.
 * 50 users send 300 photos within 30 s (every other one as a document), with Telegram's 429
 * "retry after" injected on replies; the bot runs as `npm start` runs it (inference pool, rate
 * limits, SQLite, durable polling). Prints JSON, then a table: answered / lost / duplicated,
 * latency p50 / p95 / p99 from send to reply, peak resident memory, tensors in the workers
 * before and after, submission rows.
 *
 * Options: --users N (50), --photos N (300), --seconds N (30), --workers N (every core).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { pino } from 'pino';
import { createPrismaPersistence } from '../src/adapters/persistence/prisma-persistence.ts';
import { startTelegram } from '../src/adapters/telegram/start.ts';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { buildCoreServices, createCore } from '../src/core/index.ts';
import { openDatabase } from '../src/db/database.ts';
import { InferencePool } from '../src/inference/pool.ts';
import { ModelRegistry } from '../src/ml/registry.ts';
import { startFakeTelegram, TOO_MANY_REQUESTS } from '../tests/fakes/telegram-server.ts';
import { readFile } from 'node:fs/promises';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '50' },
    photos: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '30' },
    workers: { type: 'string' },
  },
});
const USERS = Number(values.users);
const PHOTOS = Number(values.photos);
const SECONDS = Number(values.seconds);

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cnn-load-'));
  const tg = await startFakeTelegram();
  const logger = pino({ level: 'warn' });
  const config = loadConfig({
    DATA_DIR: dataDir,
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
    LOG_LEVEL: 'warn',
  });
  const db = await openDatabase(config);
  const pool = new InferencePool({
    modelsDir: config.MODELS_DIR,
    dataDirs: [],
    ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    preload: [config.DEFAULT_MODEL],
    maxQueue: config.INFERENCE_QUEUE_MAX,
    profiling: false,
    logger,
  });
  await pool.ready();
  const core = createCore(
    buildCoreServices({
      config,
      registry: new ModelRegistry(config.MODELS_DIR),
      persistence: createPrismaPersistence(db),
      logger,
      pool,
    }),
    {
      rateLimit: { points: config.RATE_LIMIT_PER_MINUTE, durationSeconds: 60 },
      chatRateLimit: { points: config.RATE_LIMIT_PER_CHAT_PER_MINUTE, durationSeconds: 60 },
    },
  );
  const bot = await startTelegram(config, core, logger, db.telegramUpdates);

  const digits = await Promise.all(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => readFile(path.join(PROJECT_ROOT, 'img', `${d}.png`))),
  );
  // One warm-up photo, not counted: the first answer compiles the chart renderer.
  const warm = tg.send({ from: { id: 1, is_bot: false, first_name: 'Warm' }, photo: digits[7]! });
  await tg.waitFor(() => tg.repliesTo(warm.message_id).length > 0, 60_000);
  const tensorsBefore = (await pool.memory()).reduce((a, m) => a + m.numTensors, 0);

  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const sentAt = new Map<number, number>();
  const firstReplyAt = new Map<number, number>();
  const watcher = setInterval(() => {
    for (const m of tg.sent) {
      if (m.replyTo !== undefined && sentAt.has(m.replyTo) && !firstReplyAt.has(m.replyTo)) {
        firstReplyAt.set(m.replyTo, performance.now());
      }
    }
  }, 10);

  const started = performance.now();
  const interval = (SECONDS * 1000) / PHOTOS;
  for (let i = 0; i < PHOTOS; i++) {
    const wait = started + i * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const u = i % USERS;
    const from = {
      id: 10_000 + u,
      is_bot: false,
      first_name: `Student ${u}`,
      language_code: u % 3 === 0 ? 'ru' : 'en',
    };
    const bytes = digits[i % 10]!;
    const m =
      i % 2 === 0
        ? tg.send({ from, photo: bytes })
        : tg.send({ from, document: { bytes, fileName: `digit-${i}.png`, mimeType: 'image/png' } });
    sentAt.set(m.message_id, performance.now());
    // Flood control now and then: the next replies get 429 "retry after 1".
    if (i % 50 === 25)
      tg.failNext(i % 100 === 25 ? 'sendPhoto' : 'sendMessage', 3, TOO_MANY_REQUESTS);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  const ids = [...sentAt.keys()];
  // Wait for every answer while they keep coming; a minute without a new one ends the wait
  // (what is unanswered then is lost).
  let answeredCount = -1;
  let lastProgress = performance.now();
  while (performance.now() - lastProgress < 60_000) {
    const n = ids.filter((id) => tg.repliesTo(id).length > 0).length;
    if (n === ids.length) break;
    if (n !== answeredCount) {
      answeredCount = n;
      lastProgress = performance.now();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 2000)); // late duplicates would arrive by now
  clearInterval(watcher);
  clearInterval(sampler);
  const tensorsAfter = (await pool.memory()).reduce((a, m) => a + m.numTensors, 0);

  const latencies = ids.flatMap((id) => {
    const at = firstReplyAt.get(id);
    return at === undefined ? [] : [at - sentAt.get(id)!];
  });
  const replies = ids.map((id) => tg.repliesTo(id));
  const persistence = createPrismaPersistence(db);
  let rows = 0;
  for (let u = 0; u < USERS; u++) {
    rows += (
      await persistence.submissions.listRecent(
        { platform: 'telegram', userId: String(10_000 + u) },
        1000,
      )
    ).length;
  }
  const injected429 = tg.calls.filter((c) => c.status === 429).length;
  const result = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    /** The machine's load while it ran (other processes share the cores). */
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(1)),
    cores: os.availableParallelism(),
    workers: pool.size,
    users: USERS,
    photos: PHOTOS,
    sendSeconds: Number(sendSeconds.toFixed(1)),
    answered: replies.filter((r) => r.length > 0).length,
    answeredWithPrediction: replies.filter((r) => r[0]?.method === 'sendPhoto').length,
    lost: replies.filter((r) => r.length === 0).length,
    duplicated: replies.filter((r) => r.length > 1).length,
    submissionRows: rows,
    injected429,
    latencyMs: {
      p50: Math.round(percentile(latencies, 50)),
      p95: Math.round(percentile(latencies, 95)),
      p99: Math.round(percentile(latencies, 99)),
      max: Math.round(Math.max(...latencies)),
    },
    peakRssMB: Math.round(peakRss / 1e6),
    tensorsBefore,
    tensorsAfter,
    core: core.metrics,
    pool: pool.stats,
  };
  console.log(JSON.stringify(result, null, 2));
  const table = new Table({ head: ['figure', 'value'] });
  for (const [k, v] of Object.entries(result)) {
    table.push([k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  }
  console.log(table.toString());

  await bot.stop();
  await core.close(5000);
  await pool.close(1000);
  await db.close();
  await tg.close();
  await rm(dataDir, { recursive: true, force: true });
  process.exitCode =
    result.lost === 0 && result.duplicated === 0 && tensorsBefore === tensorsAfter ? 0 : 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
