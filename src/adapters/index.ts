/**
 * The chat front ends `npm start` can run, as a list: each says when it is configured and how it
 * starts. Telegram and Discord join this list (one entry each) in their own change; the web chat
 * runs when no bot token is set, so a fresh machine has something to talk to.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ChatMessenger, Core } from '../core/index.ts';
import type { TelegramUpdateRepository } from '../db/telegram-update-repository.ts';
import { startDiscord } from './discord/start.ts';
import { startTelegram } from './telegram/start.ts';
import { startWebChat } from './web/server.ts';

/** A started adapter. */
export interface RunningAdapter {
  readonly name: string;
  /** Where to reach it, when it has an address (the web chat's URL). */
  readonly url?: string;
  /** Stops taking updates and waits for its requests in flight. */
  stop(): Promise<void>;
  /** Edits and posts outside an update (training progress), where the platform allows it. */
  readonly messenger?: ChatMessenger;
}

/** What some adapters keep beyond the core's ports. */
export interface AdapterStores {
  /** Telegram updates received and answered, and the polling offset (`db.telegramUpdates`). */
  readonly telegramUpdates?: TelegramUpdateRepository;
}

/** One front end that `npm start` may run. */
export interface AdapterEntry {
  readonly name: string;
  /** True when the configuration asks for this adapter. */
  enabled(config: Config): boolean;
  start(
    config: Config,
    core: Core,
    logger: Logger,
    stores?: AdapterStores,
  ): Promise<RunningAdapter>;
}

/** True when a Telegram or Discord bot is configured. */
export function hasBotToken(config: Config): boolean {
  return config.TELEGRAM_BOT_TOKEN !== undefined || config.DISCORD_TOKEN !== undefined;
}

/** Every adapter, in start order. Add Telegram and Discord here. */
export const ADAPTERS: readonly AdapterEntry[] = [
  {
    name: 'web',
    enabled: (config) => !hasBotToken(config),
    start: async (config, core, logger) => {
      // The operator's token, printed in the URL (as Jupyter does) and never logged.
      const operatorToken = config.WEB_OPERATOR_TOKEN ?? randomBytes(24).toString('base64url');
      const web = await startWebChat(core, {
        port: config.WEB_PORT,
        maxImageBytes: config.MAX_IMAGE_BYTES,
        ...(config.WEB_SESSION_SECRET ? { sessionSecret: config.WEB_SESSION_SECRET } : {}),
        logger,
        operatorToken,
      });
      return {
        name: 'web',
        url: `${web.url}?token=${operatorToken}`,
        messenger: web.messenger,
        stop: () => web.stop(),
      };
    },
  },
  {
    name: 'telegram',
    enabled: (config) => config.TELEGRAM_BOT_TOKEN !== undefined,
    start: (config, core, logger, stores) =>
      startTelegram(config, core, logger, stores?.telegramUpdates),
  },
  {
    name: 'discord',
    // Either variable alone is a mistake the adapter reports, rather than silently ignoring it.
    enabled: (config) =>
      config.DISCORD_TOKEN !== undefined || config.DISCORD_APPLICATION_ID !== undefined,
    start: (config, core, logger) => startDiscord(config, core, logger),
  },
];

/**
 * Starts every enabled adapter. If one fails to start, those already started are stopped and
 * the error is rethrown.
 * @throws {Error} when no adapter is enabled (a token is set for a platform this version lacks).
 */
export async function startAdapters(
  config: Config,
  core: Core,
  logger: Logger,
  adapters: readonly AdapterEntry[] = ADAPTERS,
  stores: AdapterStores = {},
): Promise<RunningAdapter[]> {
  const running: RunningAdapter[] = [];
  try {
    for (const adapter of adapters.filter((a) => a.enabled(config))) {
      running.push(await adapter.start(config, core, logger, stores));
      logger.info({ adapter: adapter.name }, 'adapter started');
    }
  } catch (e) {
    await Promise.allSettled(running.map((r) => r.stop()));
    throw e;
  }
  if (running.length === 0) {
    throw new Error(
      'A bot token is set, but this version has no adapter for it yet; unset it to use the web chat.',
    );
  }
  return running;
}
