/** Starting the Discord adapter from the configuration, as `npm start` does. */
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import type { Core } from '../../core/index.ts';
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
  return { name: 'discord', stop: () => bot.stop() };
}
