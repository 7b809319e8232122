/**
 * Issue 19: the adapters and the database start with known secrets, every network path fails,
 * and no log line contains a secret. Each failure is made real (a socket closed mid-request, a
 * port nobody listens on, a wrong password), not simulated by throwing a hand-made error.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect, promisify } from 'node:util';
import { Bot } from 'grammy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord } from '../../src/adapters/discord/start.ts';
import { startTelegram } from '../../src/adapters/telegram/start.ts';
import { loadConfig, PROJECT_ROOT } from '../../src/config.ts';
import { openDatabase } from '../../src/db/database.ts';
import { registerSecrets, secretsOfConfig } from '../../src/secrets.ts';
import { startFakeTelegram, type FakeTelegram } from '../fakes/telegram-server.ts';
import { makeCore } from '../unit/core/helpers.ts';
import { TEST_DATABASE_URL } from './db/helpers.ts';
import { captureLogger } from '../fixtures/log-lines.ts';

const TELEGRAM_TOKEN = '987654321:AAF-known-telegram-token_0123456789xyz';
const DISCORD_TOKEN = 'OTg3NjU0MzIx.known-discord.token-value-for-the-test';
const DB_PASSWORD = 'Known-db-pass_42';
const REDIS_PASSWORD = 'known-redis-pass';
const WEBHOOK_SECRET = 'known_webhook_secret_value';
const SECRETS = [TELEGRAM_TOKEN, DISCORD_TOKEN, DB_PASSWORD, REDIS_PASSWORD, WEBHOOK_SECRET];

const { logger, lines } = captureLogger('trace');

/** Every secret, in every form a line could carry it. */
function leaks(text: string): string[] {
  return SECRETS.filter((s) =>
    [s, encodeURIComponent(s), s.split(':')[1] ?? s].some((form) => text.includes(form)),
  );
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A proxy in front of the fake Bot API that cuts the connection of the methods in `failing`:
 * grammY then meets a real network error, whose message holds the request URL and the token.
 */
async function cuttingProxy(
  target: string,
  failing: Set<string>,
): Promise<{ server: Server; root: string }> {
  const server = createServer((req, res) => {
    const method = (req.url ?? '').split('/').at(-1) ?? '';
    if (failing.has(method)) {
      req.socket.destroy();
      return;
    }
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, root: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let tg: FakeTelegram;
let env: ReturnType<typeof makeCore>;
let dataDir: string;

beforeAll(async () => {
  // As `npm start` does: the configuration registers what it holds.
  loadConfig({
    TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
    DISCORD_TOKEN,
    DISCORD_APPLICATION_ID: '1',
    TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
    DATABASE_URL: `postgresql://lab:${DB_PASSWORD}@127.0.0.1:5432/lab`,
  });
  // REDIS_URL joins the configuration with the job queue; its password is found the same way.
  registerSecrets(secretsOfConfig({ REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:6379` }));
  tg = await startFakeTelegram({ token: TELEGRAM_TOKEN });
  env = makeCore({ rateLimit: false });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'secrets-'));
});

afterAll(async () => {
  await tg.close();
  await env.registry.dispose();
  await rm(dataDir, { recursive: true, force: true });
});

describe('no log line carries a secret (issue 19)', () => {
  it('the raw network error of the Bot API does hold the token (what the logger must hide)', async () => {
    const failing = new Set(['getMe']);
    const proxy = await cuttingProxy(tg.apiRoot, failing);
    try {
      const bot = new Bot(TELEGRAM_TOKEN, { client: { apiRoot: proxy.root } });
      const error = await bot.api.getMe().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(inspect(error, { depth: 5 })).toContain(TELEGRAM_TOKEN);
    } finally {
      proxy.server.close();
    }
  });

  it('Telegram: the command menu and long polling fail on the network', async () => {
    const failing = new Set(['setMyCommands']);
    const proxy = await cuttingProxy(tg.apiRoot, failing);
    const config = loadConfig({
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      TELEGRAM_API_ROOT: proxy.root,
    });
    const bot = await startTelegram(config, env.core, logger);
    try {
      failing.add('getUpdates');
      await waitFor(() => lines.some((l) => l.includes('getUpdates failed')));
      expect(lines.some((l) => l.includes('setting the command menu failed'))).toBe(true);
      const polling = lines.find((l) => l.includes('getUpdates failed')) ?? '';
      expect(JSON.parse(polling)).toMatchObject({ err: { type: 'HttpError' } });
    } finally {
      failing.clear();
      await bot.stop();
      proxy.server.close();
    }
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('Telegram: a start against an unreachable Bot API', async () => {
    const config = loadConfig({
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      TELEGRAM_API_ROOT: `http://127.0.0.1:${await closedPort()}`,
    });
    const error = await startTelegram(config, env.core, logger).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    logger.fatal({ err: error }, 'start-up failed');
    expect(lines.at(-1)).toContain('cannot reach the Telegram Bot API');
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('Discord: login against an unreachable API', async () => {
    const config = loadConfig({
      DISCORD_TOKEN,
      DISCORD_APPLICATION_ID: '123456789012345678',
      DISCORD_API_ROOT: `http://127.0.0.1:${await closedPort()}/api`,
    });
    const error = await startDiscord(config, env.core, logger).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    logger.fatal({ err: error }, 'start-up failed');
    const logged = JSON.parse(lines.at(-1) ?? '{}') as { err?: { type?: unknown } };
    expect(typeof logged.err?.type).toBe('string');
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('SQLite: a database file that cannot be created', async () => {
    // Its folder would be inside a regular file.
    const blocker = path.join(dataDir, 'not-a-folder');
    await writeFile(blocker, 'x');
    const error = await openDatabase({
      DATA_DIR: dataDir,
      DATABASE_URL: `file:${blocker}/cnn.db`,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    logger.fatal({ err: error }, 'start-up failed');
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('PostgreSQL: a server that does not answer, and a database that does not exist', async () => {
    const urls = [`postgresql://lab:${DB_PASSWORD}@127.0.0.1:${await closedPort()}/lab`];
    if (TEST_DATABASE_URL !== '') {
      // A real server that refuses the connection after it read the URL's password (.ci/run's
      // cluster trusts loopback, so a wrong password alone would be let in).
      const real = new URL(TEST_DATABASE_URL);
      real.password = DB_PASSWORD;
      real.pathname = '/cnn_classroom_no_such_database';
      urls.push(real.toString());
    }
    for (const url of urls) {
      const error = await openDatabase({ DATA_DIR: dataDir, DATABASE_URL: url }).then(
        (db) => db.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      logger.fatal({ err: error, url }, 'start-up failed');
    }
    expect(lines.join('')).toContain('lab:[secret]@');
    if (urls.length > 1) expect(lines.join('')).toContain('postgres:[secret]@');
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('Redis: a connection error naming the URL', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
      code: 'ECONNREFUSED',
    });
    const error = new Error(`cannot connect to redis://:${REDIS_PASSWORD}@127.0.0.1:6379`, {
      cause: refused,
    });
    logger.error({ err: error }, 'redis connection failed');
    expect(JSON.parse(lines.at(-1) ?? '{}')).toMatchObject({
      err: { cause: { code: 'ECONNREFUSED' } },
    });
    expect(leaks(lines.join(''))).toEqual([]);
  });

  it('npm start with a malformed DATABASE_URL prints no password', async () => {
    const run = promisify(execFile);
    const result = await run(
      process.execPath,
      [
        '--import',
        path.join(PROJECT_ROOT, 'node_modules/tsx/dist/esm/index.mjs'),
        path.join(PROJECT_ROOT, 'src/main.ts'),
      ],
      {
        cwd: dataDir,
        env: {
          PATH: process.env.PATH,
          DATA_DIR: dataDir,
          LOG_LEVEL: 'trace',
          TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
          // Port out of range: `new URL` throws ERR_INVALID_URL with the whole input attached.
          DATABASE_URL: `postgresql://lab:${DB_PASSWORD}@127.0.0.1:99999999/lab`,
        },
      },
    ).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ERR_INVALID_URL');
    expect(leaks(result.stdout + result.stderr)).toEqual([]);
  });
});
