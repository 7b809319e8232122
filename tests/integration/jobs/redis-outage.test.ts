/**
 * issue 14: a dead REDIS_URL fails fast, and a Redis outage after start does not stop the bot.
 * `npm start` and `npm run worker` are run as processes against a closed loopback port and a
 * wrong password; the outage is a private `redis-server` stopped and started again on its port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../fakes/free-port.ts';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../../src/db/database.ts';
import { UserError } from '../../../src/errors.ts';
import { startBullProducer, type BullProducer } from '../../../src/jobs/bull.ts';
import { createTrainingService } from '../../../src/jobs/training-service.ts';
import { connectRedis, reconnectDelay, redisTarget } from '../../../src/jobs/redis.ts';
import type { TrainingRunRecord } from '../../../src/db/training-run-repository.ts';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { MODELS_DIR } from '../../unit/core/helpers.ts';

const REDIS = '/usr/bin/redis-server';
const PASSWORD = 'redis-pass-never-logged-7f3a';

/** A private redis-server on `port`, ready. */
async function redisServer(port: number, ...args: string[]): Promise<ChildProcess> {
  const child = spawn(
    REDIS,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (/Ready to accept connections/i.test(d.toString())) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A logger whose JSON lines are kept. */
function capture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as never);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Runs an entry point of the project as `npm start` / `npm run worker` do (tsx). */
async function runEntry(
  entry: string,
  env: Record<string, string>,
): Promise<{ code: number; out: string; ms: number }> {
  const t0 = Date.now();
  const result = await promisify(execFile)(
    process.execPath,
    [path.join(PROJECT_ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(PROJECT_ROOT, entry)],
    { cwd: env.DATA_DIR, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
  ).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      out: e.stdout + e.stderr,
    }),
  );
  return { ...result, ms: Date.now() - t0 };
}

describe('connecting to Redis', () => {
  let blackhole: Server;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Accepts the connection and never answers: only the deadline ends the wait.
    blackhole = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => blackhole.close(() => resolve()));
  });

  it('names host, port and db, never the password', () => {
    expect(redisTarget(`redis://:${PASSWORD}@10.0.0.5:6390/2`)).toBe('10.0.0.5:6390/2');
    expect(redisTarget(`rediss://user:${PASSWORD}@cache.example`)).toBe('cache.example:6379');
  });

  it('backs off 250 ms, doubling, to at most 10 s between reconnections', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map(reconnectDelay)).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });

  it('refuses a closed port at once', async () => {
    const port = await freePort();
    const { logger } = capture();
    const t0 = Date.now();
    await expect(
      connectRedis(`redis://:${PASSWORD}@127.0.0.1:${port}`, {
        logger,
        connectTimeoutMs: 3000,
        role: 'test',
      }),
    ).rejects.toThrow(
      `Redis at 127.0.0.1:${port} (REDIS_URL) is not usable: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('gives up on a server that never answers after the connect timeout', async () => {
    const a = blackhole.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    const { logger } = capture();
    const t0 = Date.now();
    await expect(
      connectRedis(`redis://127.0.0.1:${port}`, { logger, connectTimeoutMs: 800, role: 'test' }),
    ).rejects.toThrow(
      new RegExp(`^Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URL\\) is not usable`),
    );
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(750);
    expect(ms).toBeLessThan(3000);
  });
});

describe.skipIf(!existsSync(REDIS))('a dead REDIS_URL at start (processes)', () => {
  let dataDir: string;
  let guarded: ChildProcess | undefined;
  let guardedPort: number;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'redis-dead-'));
    guardedPort = await freePort();
    guarded = await redisServer(guardedPort, '--requirepass', 'the-right-one');
  });
  afterAll(async () => {
    await stop(guarded);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('npm start stops within seconds with exit code 1 on a closed port, the password unsaid', async () => {
    const port = await freePort();
    const r = await runEntry('src/main.ts', {
      DATA_DIR: dataDir,
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}/1`,
      REDIS_CONNECT_TIMEOUT_SECONDS: '2',
      INFERENCE_WORKERS: '1',
      WEB_PORT: '0',
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      `start-up failed: Redis at 127.0.0.1:${port}/1 (REDIS_URL) is not usable: ECONNREFUSED`,
    );
    expect(r.out).not.toContain(PASSWORD);
    // Checked before the models and inference workers load: seconds, not forever.
    expect(r.ms).toBeLessThan(15_000);
  }, 60_000);

  it('npm run worker stops with exit code 1 on a wrong password, the password unsaid', async () => {
    const r = await runEntry('src/worker.ts', {
      DATA_DIR: dataDir,
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${guardedPort}`,
      REDIS_CONNECT_TIMEOUT_SECONDS: '2',
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      `worker start-up failed: Redis at 127.0.0.1:${guardedPort} (REDIS_URL) is not usable: authentication failed (check the password in REDIS_URL)`,
    );
    expect(r.out).not.toContain(PASSWORD);
    expect(r.ms).toBeLessThan(15_000);
  }, 60_000);
});

describe.skipIf(!existsSync(REDIS))('a Redis outage after start', () => {
  let port: number;
  let server: ChildProcess | undefined;
  let producer: BullProducer | undefined;
  const { logger, lines } = capture();
  const run = (id: number) => ({ id }) as TrainingRunRecord;

  beforeAll(async () => {
    port = await freePort();
    server = await redisServer(port);
  });
  afterAll(async () => {
    await producer?.close();
    await stop(server);
  });

  it('logs the loss, fails a job added meanwhile at once, reconnects with backoff, and goes on', async () => {
    producer = await startBullProducer(`redis://127.0.0.1:${port}`, () => undefined, {
      logger,
      connectTimeoutMs: 2000,
      prefix: `outage-${process.pid}`,
    });
    await producer.add(run(1));
    await stop(server);
    await vi.waitFor(
      () => expect(lines.some((l) => l.msg === 'redis connection lost')).toBe(true),
      { timeout: 5000 },
    );
    await vi.waitFor(
      () =>
        expect(
          lines.filter((l) => l.msg === 'redis unreachable: reconnecting').length,
        ).toBeGreaterThanOrEqual(2),
      { timeout: 5000 },
    );
    const retries = lines.filter((l) => l.msg === 'redis unreachable: reconnecting');
    expect(retries.every((l) => (l.delayMs as number) <= 10_000)).toBe(true);
    // The queue's connection fails commands while Redis is down instead of holding them: a
    // /retrain meanwhile is answered with job.queue_down, and its row does not wait forever.
    const t0 = Date.now();
    await expect(producer.add(run(2))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(1000);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'redis-outage-'));
    const db = await openDatabase({ DATA_DIR: dataDir });
    try {
      const training = createTrainingService({
        db,
        folders: { modelsDir: MODELS_DIR, dataDir },
        limits: { maxEpochs: 30, maxBatch: 1024, jobsPerInstructor: 2 },
        onEnqueued: (r) => producer!.add(r),
      });
      const refused = await training.enqueue({ model: 'lenet-mnist', epochs: 1 }, 'cli').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(UserError);
      expect(refused).toMatchObject({ id: 'job.queue_down', params: { job: 1 } });
      expect((await db.trainingRuns.get(1))?.status).toBe('cancelled');
    } finally {
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    }
    // Back on the same port: the connections come back by themselves.
    server = await redisServer(port);
    await vi.waitFor(
      () => expect(lines.some((l) => l.msg === 'redis connection back')).toBe(true),
      { timeout: 15_000 },
    );
    await vi.waitFor(() => producer!.add(run(3)), { timeout: 5000, interval: 200 });
    expect(lines.filter((l) => l.level === 60)).toEqual([]);
  }, 40_000);
});
