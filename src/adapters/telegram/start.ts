/**
 * Starting the Telegram adapter: long polling by default (`@grammyjs/runner`, concurrent), or a
 * webhook served on node:http when `TELEGRAM_WEBHOOK_URL` is set.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { run } from '@grammyjs/runner';
import { GrammyError, HttpError, webhookCallback } from 'grammy';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import type { Core } from '../../core/index.ts';
import type { RunningAdapter } from '../index.ts';
import { ALLOWED_UPDATES, buildTelegramBot, DEFAULT_API_ROOT } from './bot.ts';
import { registerCommands } from './commands.ts';

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
    const runner = run(bot, {
      runner: { fetch: { timeout: 30, allowed_updates: ALLOWED_UPDATES }, silent: true },
      sink: { concurrency: CONCURRENCY },
    });
    void runner.task()?.catch((e: unknown) => {
      // 401 (token revoked) or 409 (another instance polls): nothing more will arrive.
      log.error({ err: e }, 'telegram polling stopped');
    });
    log.info({ username, mode: 'polling' }, 'telegram bot started');
    return {
      name: 'telegram',
      username,
      messenger,
      stop: async () => {
        if (runner.isRunning()) await runner.stop();
        await settled();
      },
    };
  }

  const secret = config.TELEGRAM_WEBHOOK_SECRET ?? randomBytes(32).toString('base64url');
  const webhookPath = new URL(url).pathname;
  const callback = webhookCallback(bot, 'http', {
    secretToken: secret,
    // Answer Telegram within its timeout even while the model queue is long; the update keeps
    // being handled (Telegram would otherwise send it again).
    onTimeout: 'return',
    timeoutMilliseconds: WEBHOOK_ANSWER_MS,
  });
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || pathname !== webhookPath) {
      res.writeHead(404).end();
      return;
    }
    callback(req, res).catch((e: unknown) => {
      log.warn({ err: e }, 'bad webhook request');
      if (!res.headersSent) res.writeHead(400);
      res.end();
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
