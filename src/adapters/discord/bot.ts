/**
 * The Discord adapter: slash commands and mentions, translated to the core and back. discord.js
 * keeps the gateway connection (heartbeats, resume, reconnects) and the REST rate limits.
 */
import {
  Client,
  Events,
  GatewayIntentBits,
  Partials,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Message,
} from 'discord.js';
import type { Logger } from 'pino';
import type { Core } from '../../core/index.ts';
import { interactionContext } from './interaction-context.ts';
import { mentionContext } from './mention-context.ts';
import { pressContext } from './press-context.ts';

/** Options of {@link startDiscordBot}. */
export interface DiscordBotOptions {
  /** The bot token (Developer Portal, Bot page). Never logged. */
  readonly token: string;
  /** The application id the slash commands are registered under (`deploy-commands`). */
  readonly applicationId: string;
  /**
   * Another REST API root instead of `https://discord.com/api` (tests: a fake on 127.0.0.1);
   * the gateway address is then read from its `GET /gateway/bot`.
   */
  readonly apiRoot?: string;
  /** Largest attachment downloaded, bytes; the download stops past it (default 20 MB). */
  readonly maxDownloadBytes?: number;
  readonly logger: Logger;
}

/** A logged-in bot. */
export interface RunningDiscordBot {
  readonly client: Client<true>;
  /** Stops taking updates, waits for those in flight to be answered, and logs out. */
  stop(): Promise<void>;
}

/**
 * The gateway intents: `Guilds` (the guilds and channels interactions and messages refer to),
 * `GuildMessages` (mentions of the bot) and `DirectMessages`. No privileged intent: the content
 * and attachments of messages that mention the bot, and of DMs, arrive without Message Content.
 */
export const INTENTS = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.DirectMessages,
] as const;

/** An error's name, message and Discord code, without request bodies (images) or headers. */
function brief(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: String(e) };
  const { code, status } = e as { code?: unknown; status?: unknown };
  return { name: e.name, message: e.message, code, status };
}

/**
 * Logs the bot in and serves the core's commands: each slash command is deferred at once (the
 * 3-second window), handed to the core, and answered by editing the deferred response; messages
 * that mention the bot (and DMs) are answered with replies. Resolves when the bot is ready.
 *
 * @example
 * const bot = await startDiscordBot(core, { token, applicationId, logger });
 * // ... on shutdown
 * await bot.stop();
 * @throws {Error} when logging in fails (a wrong token, Discord unreachable).
 */
export async function startDiscordBot(
  core: Core,
  options: DiscordBotOptions,
): Promise<RunningDiscordBot> {
  const log = options.logger.child({ adapter: 'discord' });
  const client = new Client({
    intents: [...INTENTS],
    // DM channels are not cached before their first message: without this, DMs are dropped.
    partials: [Partials.Channel],
    // Replies echo user input (names, arguments): never let them ping @everyone or roles.
    allowedMentions: { parse: [], repliedUser: true },
    ...(options.apiRoot ? { rest: { api: options.apiRoot } } : {}),
  });
  const commands = new Map(core.commands.map((c) => [c.name, c]));
  const inFlight = new Set<Promise<void>>();
  let stopping = false;

  /** Keeps an update's work for {@link RunningDiscordBot.stop}; a failure is logged, not thrown. */
  function track(work: Promise<void>): void {
    const settled = work.catch((e: unknown) => {
      log.error({ err: brief(e) }, 'a Discord update failed');
    });
    inFlight.add(settled);
    void settled.finally(() => inFlight.delete(settled));
  }

  async function onCommand(interaction: ChatInputCommandInteraction): Promise<void> {
    const where = { command: interaction.commandName, interaction: interaction.id };
    try {
      await interaction.deferReply();
    } catch (e) {
      // Usually the 3-second window passed (the process was busy): Discord shows a failure.
      log.warn({ ...where, err: brief(e) }, 'could not defer the interaction');
      return;
    }
    const { ctx, answered } = interactionContext(
      interaction,
      commands.get(interaction.commandName),
      options.maxDownloadBytes,
    );
    await core.handle(ctx);
    // The core stays silent for some updates (rate-limited ones): remove "thinking...".
    if (!answered()) {
      await interaction.deleteReply().catch((e: unknown) => {
        log.warn({ ...where, err: brief(e) }, 'could not delete the deferred response');
      });
    }
  }

  /** issue 16: a press of one of the bot's buttons; always acknowledged. */
  async function onButton(interaction: ButtonInteraction): Promise<void> {
    const { ctx, answered } = pressContext(interaction);
    await core.handle(ctx);
    if (!answered()) {
      await interaction.deferUpdate().catch((e: unknown) => {
        log.warn({ interaction: interaction.id, err: brief(e) }, 'could not acknowledge a press');
      });
    }
  }

  async function onMessage(message: Message): Promise<void> {
    const ctx = mentionContext(
      message,
      client.user?.id ?? options.applicationId,
      options.maxDownloadBytes,
    );
    if (ctx) await core.handle(ctx);
  }

  client.on(Events.InteractionCreate, (interaction) => {
    if (stopping) return;
    if (interaction.isButton()) track(onButton(interaction));
    else if (interaction.isChatInputCommand()) track(onCommand(interaction));
  });
  client.on(Events.MessageCreate, (message) => {
    if (stopping) return;
    track(onMessage(message));
  });
  client.on(Events.Error, (e) => log.error({ err: brief(e) }, 'discord.js error'));
  client.on(Events.Warn, (message) => log.warn({ message }, 'discord.js warning'));
  client.on(Events.ShardDisconnect, (event, shard) => {
    log.warn({ shard, code: event.code }, 'gateway disconnected');
  });

  const ready = new Promise<Client<true>>((resolve) => client.once(Events.ClientReady, resolve));
  try {
    await client.login(options.token);
  } catch (e) {
    throw new Error(`Discord login failed: ${(e as Error).message}`, { cause: e });
  }
  const readyClient = await ready;
  if (readyClient.application.id !== options.applicationId) {
    log.warn(
      { configured: options.applicationId, actual: readyClient.application.id },
      "DISCORD_APPLICATION_ID is not the token's application: its slash commands will not arrive",
    );
  }
  log.info({ user: readyClient.user.tag, guilds: readyClient.guilds.cache.size }, 'logged in');

  return {
    client: readyClient,
    async stop() {
      stopping = true;
      await Promise.allSettled([...inFlight]);
      await client.destroy();
    },
  };
}
