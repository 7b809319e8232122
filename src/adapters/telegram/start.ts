/**
 * Starting the Telegram adapter: long polling by default (`@grammyjs/runner`, concurrent), or a
 * webhook served on node:http when `TELEGRAM_WEBHOOK_URL` is set.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GrammyError, HttpError, webhookCallback } from 'grammy';
import type { Update } from 'grammy/types';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import type { Core } from '../../core/index.ts';
import type { RunningAdapter } from '../index.ts';
import { ALLOWED_UPDATES, buildTelegramBot, DEFAULT_API_ROOT } from './bot.ts';
import { registerCommands } from './commands.ts';
import {
  createMemoryTelegramUpdates,
  type TelegramUpdateRepository,
} from '../../db/telegram-update-repository.ts';
import { startPolling } from './poller.ts';

/** The configuration the adapter reads. */
export type TelegramConfig = Pick<
  Config,
  | 'TELEGRAM_BOT_TOKEN'
  | 'TELEGRAM_API_ROOT'
  | 'TELEGRAM_MAX_DOWNLOAD_BYTES'
  | 'TELEGRAM_WEBHOOK_URL'
  | 'TELEGRAM_WEBHOOK_HOST'
  | 'TELEGRAM_WEBHOOK_PORT'
  | 'TELEGRAM_WEBHOOK_SECRET'
>;

/** A started Telegram adapter. */
export interface RunningTelegram extends RunningAdapter {
  /** The bot's username, from getMe. */
  readonly username: string;
  /** In webhook mode: the port the webhook server listens on (useful with port 0). */
  readonly webhookPort?: number;
}

/**
 * Updates handled at once in polling mode. Each may hold a downloaded file (up to 20 MB) while
 * it waits for the model, so this bounds memory; 30 students sending at once fit easily.
 */
const CONCURRENCY = 50;

/** How long a webhook request waits for its update before answering Telegram anyway. */
const WEBHOOK_ANSWER_MS = 9_000;

/**
 * Largest webhook body, bytes. An update is a message's JSON: 4096 characters of text or a
 * 1024-character caption, entities and file ids fit in a few tens of kilobytes.
 */
export const WEBHOOK_MAX_BODY_BYTES = 1 << 20;

/** A webhook body over {@link WEBHOOK_MAX_BODY_BYTES}. */
class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/**
 * grammY's `http` adapter with a body limit: grammY compares the secret (in constant time) before
 * it asks for the update, so only a request with the right secret is read at all, and then at most
 * {@link WEBHOOK_MAX_BODY_BYTES}, counted while streaming.
 */
function limitedHttpAdapter(req: IncomingMessage, res: ServerResponse) {
  const header = req.headers['x-telegram-bot-api-secret-token'];
  return {
    get update(): Promise<Update> {
      return new Promise<Update>((resolve, reject) => {
        if (Number(req.headers['content-length'] ?? 0) > WEBHOOK_MAX_BODY_BYTES) {
          reject(new BodyTooLarge('content-length over the limit'));
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        req.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > WEBHOOK_MAX_BODY_BYTES) {
            req.removeAllListeners('data');
            req.pause();
            reject(new BodyTooLarge(`body over ${WEBHOOK_MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        req.once('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Update);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
        req.once('error', reject);
      });
    },
    header: (Array.isArray(header) ? header[0] : header) ?? '',
    end: () => {
      res.end();
    },
    respond: (json: string) => {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(json);
    },
    unauthorized: () => {
      res.writeHead(401).end('secret token is wrong');
    },
  };
}

/**
 * Starts the bot: checks the token (getMe), sets the command menu (en, ru), then polls or serves
 * the webhook. The token is never logged.
 * @throws {Error} when the token is missing or Telegram rejects it.
 *
 * @example
 * const telegram = await startTelegram(loadConfig(), core, logger);
 * // ... on shutdown:
 * await telegram.stop();
 */
export async function startTelegram(
  config: TelegramConfig,
  core: Core,
  logger: Logger,
  /**
   * Where received updates and the polling offset are kept (`db.telegramUpdates`), so that a
   * restart answers what was left unanswered, once. Default: in memory (no restart safety).
   */
  updates: TelegramUpdateRepository = createMemoryTelegramUpdates(),
): Promise<RunningTelegram> {
  const token = config.TELEGRAM_BOT_TOKEN;
  if (token === undefined) throw new Error('TELEGRAM_BOT_TOKEN is not set');
  const log = logger.child({ adapter: 'telegram' });
  const apiRoot = config.TELEGRAM_API_ROOT ?? DEFAULT_API_ROOT;
  const { bot, settled, messenger } = buildTelegramBot(core, {
    token,
    apiRoot,
    maxDownloadBytes: config.TELEGRAM_MAX_DOWNLOAD_BYTES,
    logger: log,
  });

  try {
    // Not bot.init(): it retries getMe forever; a wrong token or API root must fail the start.
    bot.botInfo = await bot.api.getMe();
  } catch (e) {
    if (e instanceof GrammyError && e.error_code === 401) {
      throw new Error('Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized)', { cause: e });
    }
    if (e instanceof HttpError) {
      throw new Error(`cannot reach the Telegram Bot API at ${apiRoot}: ${e.message}`, {
        cause: e,
      });
    }
    throw e;
  }
  const username = bot.botInfo.username;
  try {
    await registerCommands(bot.api, core.commands);
  } catch (e) {
    // A menu is a convenience: the bot works without it.
    log.warn({ err: e }, 'setting the command menu failed');
  }

  const url = config.TELEGRAM_WEBHOOK_URL;
  if (url === undefined) {
    await bot.api.deleteWebhook(); // getUpdates is refused while a webhook is set
    const polling = await startPolling({
      bot,
      updates,
      logger: log,
      concurrency: CONCURRENCY,
      allowedUpdates: ALLOWED_UPDATES,
    });
    void polling.task.catch((e: unknown) => {
      // 401 (token revoked) or 409 (another instance polls): nothing more will arrive.
      log.error({ err: e }, 'telegram polling stopped');
    });
    log.info({ username, mode: 'polling' }, 'telegram bot started');
    return {
      name: 'telegram',
      username,
      messenger,
      stop: async () => {
        await polling.stop();
        await settled();
      },
    };
  }

  const secret = config.TELEGRAM_WEBHOOK_SECRET ?? randomBytes(32).toString('base64url');
  const webhookPath = new URL(url).pathname;
  // A custom adapter's handler is typed loosely: it is (req, res) => Promise, as for 'http'.
  const callback = webhookCallback(bot, limitedHttpAdapter, {
    secretToken: secret,
    // Answer Telegram within its timeout even while the model queue is long; the update keeps
    // being handled (Telegram would otherwise send it again).
    onTimeout: 'return',
    timeoutMilliseconds: WEBHOOK_ANSWER_MS,
  }) as (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || pathname !== webhookPath) {
      res.writeHead(404).end();
      return;
    }
    callback(req, res).catch((e: unknown) => {
      log.warn({ err: e }, 'bad webhook request');
      if (!res.headersSent) {
        res.writeHead(e instanceof BodyTooLarge ? 413 : 400, { connection: 'close' });
      }
      res.end();
      if (e instanceof BodyTooLarge) req.destroy();
    });
  });
  const port = await listen(server, config.TELEGRAM_WEBHOOK_HOST, config.TELEGRAM_WEBHOOK_PORT);
  try {
    await bot.api.setWebhook(url, {
      secret_token: secret,
      allowed_updates: ALLOWED_UPDATES,
    });
  } catch (e) {
    server.close();
    throw e;
  }
  log.info({ username, mode: 'webhook', url, port }, 'telegram bot started');
  return {
    name: 'telegram',
    username,
    messenger,
    webhookPort: port,
    stop: async () => {
      // The webhook stays registered: Telegram keeps the updates until the bot is back.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all([closed, settled()]);
    },
  };
}

/** Listens and returns the port (the chosen one when `port` is 0). */
function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
