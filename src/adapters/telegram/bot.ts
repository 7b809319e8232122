/**
 * The grammY bot: each message becomes a {@link ChatContext} for the core, whose replies become
 * Bot API calls. Nothing here knows about commands, models or texts.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { sequentialize } from '@grammyjs/runner';
import { Bot, InputFile, type Context, type Transformer } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import type { Logger } from 'pino';
import type { ChatContext, ChatMessenger, Core, ReplyOptions } from '../../core/index.ts';
import { createFileDownloader } from './files.ts';
import { translateMessage } from './update.ts';

/** The official Bot API server. */
export const DEFAULT_API_ROOT = 'https://api.telegram.org';

/**
 * The update types the bot asks for: messages, and presses of its inline buttons (issue 16);
 * not edits, channel posts, reactions...
 */
export const ALLOWED_UPDATES = ['message', 'callback_query'] as const;

/** Telegram's caption limit, characters. */
const MAX_CAPTION = 1024;

/** The core's buttons as an inline keyboard (`callback_data` is the button's data). */
export function inlineKeyboard(options: ReplyOptions | undefined): {
  reply_markup?: InlineKeyboardMarkup;
} {
  const rows = options?.buttons;
  if (!rows || rows.length === 0) return {};
  return {
    reply_markup: {
      inline_keyboard: rows.map((row) => row.map((b) => ({ text: b.text, callback_data: b.data }))),
    },
  };
}

/**
 * Calls made without auto-retry: a late chat action is worse than none, and a start-up `getMe`
 * that cannot reach the server should fail the start with a clear error, not wait forever; nor
 * may the command menu (a convenience) hold the start while the network is down.
 */
const NOT_RETRIED = new Set(['sendChatAction', 'getMe', 'setMyCommands']);

/** Options of {@link buildTelegramBot}. */
export interface TelegramBotOptions {
  readonly token: string;
  /** Bot API server, no trailing slash (default {@link DEFAULT_API_ROOT}). */
  readonly apiRoot?: string;
  /** Largest file downloaded, bytes (the Bot API's 20 MB unless a local server lifts it). */
  readonly maxDownloadBytes: number;
  readonly logger: Logger;
}

/** A bot wired to the core, and a way to wait for the updates it is handling. */
export interface TelegramBot {
  readonly bot: Bot;
  /** Edits and posts outside an update (training progress). */
  readonly messenger: ChatMessenger;
  /** Resolves when every update handed to the core so far has been answered. */
  readonly settled: () => Promise<void>;
}

/**
 * Builds the bot (not started: see `start.ts`). Per update: the message is translated
 * (`update.ts`), its file becomes a lazy download with Telegram's announced size, and the core's
 * replies are sent as replies to that message (in the same forum topic).
 *
 * - `@grammyjs/auto-retry`: a 429 "retry after N" is retried after N seconds, unless N is over
 *   60 (an answer minutes late is no answer in a lab); a 5xx after a growing pause; at most 5
 *   retries. Network errors are retried with a growing pause until the network is back.
 *   Chat actions, `getMe` and the command menu are not retried (see {@link NOT_RETRIED}).
 * - Updates of one user in one chat are handled in order (`sequentialize`); different users'
 *   run concurrently (the core queues the model itself).
 *
 * @example
 * const { bot } = buildTelegramBot(core, { token, maxDownloadBytes: 20 << 20, logger });
 * bot.botInfo = await bot.api.getMe();
 */
export function buildTelegramBot(core: Core, options: TelegramBotOptions): TelegramBot {
  const apiRoot = options.apiRoot ?? DEFAULT_API_ROOT;
  const log = options.logger;
  const bot = new Bot(options.token, { client: { apiRoot } });

  // The runner is silent (it would print to the console): polling failures are logged here.
  // Installed first, so it runs inside auto-retry and sees every failed attempt.
  const logPollingFailures: Transformer = async (prev, method, payload, signal) => {
    try {
      const result = await prev(method, payload, signal);
      if (!result.ok && method === 'getUpdates') {
        log.warn({ code: result.error_code, description: result.description }, 'getUpdates failed');
      }
      return result;
    } catch (e) {
      if (method === 'getUpdates' && !signal?.aborted) log.warn({ err: e }, 'getUpdates failed');
      throw e;
    }
  };
  bot.api.config.use(logPollingFailures);
  const retry = autoRetry({ maxRetryAttempts: 5, maxDelaySeconds: 60 });
  const retrySome: Transformer = (prev, method, payload, signal) =>
    NOT_RETRIED.has(method) ? prev(method, payload, signal) : retry(prev, method, payload, signal);
  bot.api.config.use(retrySome);

  const download = createFileDownloader({
    api: bot.api,
    apiRoot,
    token: options.token,
    maxBytes: options.maxDownloadBytes,
  });
  const pending = new Set<Promise<void>>();

  bot.use(
    sequentialize((ctx) => (ctx.chat && ctx.from ? `${ctx.chat.id}:${ctx.from.id}` : undefined)),
  );
  bot.on('message', async (ctx) => {
    const m = translateMessage(ctx.message, ctx.me.username);
    if (!m) return;
    const chatId = ctx.chat.id;
    const topic = m.threadId === undefined ? {} : { message_thread_id: m.threadId };
    const quote = {
      ...topic,
      reply_parameters: { message_id: ctx.message.message_id, allow_sending_without_reply: true },
    };
    const file = m.file;
    const chatCtx: ChatContext = {
      platform: 'telegram',
      user: m.user,
      chat: m.chat,
      messageId: m.messageId,
      ...(m.command ? { command: m.command } : {}),
      ...(m.replyTo ? { replyTo: m.replyTo } : {}),
      ...(m.mentions ? { mentions: m.mentions } : {}),
      ...(file
        ? {
            image: {
              fetch: () => download(file),
              ...(file.fileSize === undefined ? {} : { declaredBytes: file.fileSize }),
              ...(file.fileName === undefined ? {} : { fileName: file.fileName }),
            },
          }
        : {}),
      ...(m.replyToMessageId === undefined ? {} : { replyToMessageId: m.replyToMessageId }),
      reply: async (text, options) => {
        await ctx.api.sendMessage(chatId, text, { ...quote, ...inlineKeyboard(options) });
      },
      replyEditable: async (text) => {
        const sent = await ctx.api.sendMessage(chatId, text, quote);
        return { chatId: String(chatId), messageId: String(sent.message_id) };
      },
      replyImage: async (png, caption, options) => {
        await ctx.api.sendPhoto(chatId, new InputFile(png, 'prediction.png'), {
          caption,
          ...quote,
          ...inlineKeyboard(options),
        });
      },
      replyFile: async (bytes, fileName, caption) => {
        await ctx.api.sendDocument(chatId, new InputFile(bytes, fileName), { caption, ...quote });
      },
      action: async (kind) => {
        await ctx.api.sendChatAction(chatId, kind, topic);
      },
    };
    const handled = core.handle(chatCtx);
    pending.add(handled);
    try {
      await handled;
    } finally {
      pending.delete(handled);
    }
  });
  bot.on('callback_query', async (ctx) => {
    const handled = handlePress(ctx);
    pending.add(handled);
    try {
      await handled;
    } finally {
      pending.delete(handled);
    }
  });

  /**
   * issue 16: a press of an inline button. The core gets the press with the button's data; the
   * query is always answered (the button stops spinning), by the core's notice or silently.
   */
  async function handlePress(ctx: Context): Promise<void> {
    const query = ctx.callbackQuery;
    if (!query) return;
    let answered = false;
    const answer = async (text?: string): Promise<void> => {
      if (answered) return;
      answered = true;
      await ctx.answerCallbackQuery(text === undefined ? {} : { text: text.slice(0, 200) });
    };
    const message = query.message;
    const from = query.from;
    if (query.data === undefined || !message || from.is_bot) {
      await answer();
      return;
    }
    const chat = message.chat;
    const chatId = chat.id;
    const topic =
      'is_topic_message' in message && message.is_topic_message && message.message_thread_id
        ? { message_thread_id: message.message_thread_id }
        : {};
    const quote = {
      ...topic,
      reply_parameters: { message_id: message.message_id, allow_sending_without_reply: true },
    };
    const name = [from.first_name, from.last_name].filter(Boolean).join(' ');
    const title = 'title' in chat ? chat.title : undefined;
    const chatCtx: ChatContext = {
      platform: 'telegram',
      user: {
        id: String(from.id),
        name: name || from.username || String(from.id),
        ...(from.language_code ? { languageCode: from.language_code } : {}),
      },
      chat: {
        id: String(chatId),
        type: chat.type === 'private' ? 'private' : 'group',
        ...(title ? { title } : {}),
      },
      messageId: String(message.message_id),
      press: {
        data: query.data,
        answer,
        finish: async (note) => {
          const caption = 'caption' in message ? message.caption : undefined;
          const text = 'text' in message ? message.text : undefined;
          // Editing without reply_markup removes the keyboard; the note marks what was done.
          if (text !== undefined) {
            await ctx.api.editMessageText(chatId, message.message_id, `${text}\n\n${note}`);
          } else {
            const marked = caption === undefined ? note : `${caption}\n\n${note}`;
            await ctx.api.editMessageCaption(chatId, message.message_id, {
              caption: marked.slice(0, MAX_CAPTION),
            });
          }
        },
      },
      reply: async (text, options) => {
        await ctx.api.sendMessage(chatId, text, { ...quote, ...inlineKeyboard(options) });
      },
      replyImage: async (png, caption, options) => {
        await ctx.api.sendPhoto(chatId, new InputFile(png, 'review.png'), {
          caption,
          ...quote,
          ...inlineKeyboard(options),
        });
      },
    };
    try {
      await core.handle(chatCtx);
    } finally {
      await answer().catch((e: unknown) => {
        log.warn({ err: e }, 'could not answer a callback query');
      });
    }
  }

  // The core never rejects; this catches failures of the translation itself.
  bot.catch((err) => {
    log.error({ err: err.error, updateId: err.ctx.update.update_id }, 'telegram update failed');
  });

  const messenger: ChatMessenger = {
    platform: 'telegram',
    async editText(chatId, messageId, text) {
      await bot.api.editMessageText(chatId, Number(messageId), text);
    },
    async sendImage(chatId, png, caption, replyTo) {
      await bot.api.sendPhoto(chatId, new InputFile(png, 'learning-curves.png'), {
        caption: caption.slice(0, 1024),
        ...(replyTo === undefined
          ? {}
          : {
              reply_parameters: {
                message_id: Number(replyTo),
                allow_sending_without_reply: true,
              },
            }),
      });
    },
  };

  return {
    bot,
    messenger,
    settled: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
