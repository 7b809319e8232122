/** Starting the Discord adapter from the configuration, as `npm start` does. */
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { Routes } from 'discord.js';
import type { ChatMessenger, Core } from '../../core/index.ts';
import { MESSAGE_MAX } from './message-text.ts';
import type { RunningAdapter } from '../index.ts';
import { startDiscordBot } from './bot.ts';

/** The configuration the adapter reads. */
export type DiscordConfig = Pick<
  Config,
  'DISCORD_TOKEN' | 'DISCORD_APPLICATION_ID' | 'DISCORD_API_ROOT' | 'MAX_IMAGE_BYTES'
>;

/**
 * Logs the bot in (`DISCORD_TOKEN`, `DISCORD_APPLICATION_ID`, optionally `DISCORD_API_ROOT`) and
 * serves slash commands and mentions until stopped. The token is never logged.
 * @throws {Error} when a variable is missing or Discord refuses the token.
 *
 * @example
 * const discord = await startDiscord(loadConfig(), core, logger);
 * // ... on shutdown:
 * await discord.stop();
 */
export async function startDiscord(
  config: DiscordConfig,
  core: Core,
  logger: Logger,
): Promise<RunningAdapter> {
  const token = config.DISCORD_TOKEN;
  const applicationId = config.DISCORD_APPLICATION_ID;
  if (token === undefined || applicationId === undefined) {
    throw new Error(
      'The Discord adapter needs both DISCORD_TOKEN and DISCORD_APPLICATION_ID ' +
        '(Developer Portal: Bot -> Token; General Information -> Application ID).',
    );
  }
  const bot = await startDiscordBot(core, {
    token,
    applicationId,
    ...(config.DISCORD_API_ROOT ? { apiRoot: config.DISCORD_API_ROOT } : {}),
    maxDownloadBytes: config.MAX_IMAGE_BYTES,
    logger,
  });
  const messenger: ChatMessenger = {
    platform: 'discord',
    async editText(chatId, messageId, text) {
      await bot.client.rest.patch(Routes.channelMessage(chatId, messageId), {
        body: { content: text.slice(0, MESSAGE_MAX) },
      });
    },
    async sendImage(chatId, png, caption, replyTo) {
      await bot.client.rest.post(Routes.channelMessages(chatId), {
        body: {
          content: caption.slice(0, MESSAGE_MAX),
          allowed_mentions: { parse: [] },
          ...(replyTo === undefined
            ? {}
            : { message_reference: { message_id: replyTo, fail_if_not_exists: false } }),
        },
        files: [{ name: 'learning-curves.png', data: Buffer.from(png) }],
      });
    },
  };
  return { name: 'discord', messenger, stop: () => bot.stop() };
}
