/**
 * What an adapter (Telegram, Discord, the web chat) hands the core for one incoming message or
 * interaction. Adapters translate their platform's update into a {@link ChatContext} and call
 * `core.handle(ctx)`; everything else (language, rate limits, commands, errors, logging) happens
 * in the core.
 */

/**
 * Makes user-given text (a display name, a file name, an echoed argument) show literally in a
 * reply: the chat's `ChatContext.literal` (Discord escapes its Markdown); plain-text chats need
 * nothing.
 */
export type Literal = (text: string) => string;

/** The chat platforms the core serves. */
export const PLATFORMS = ['telegram', 'discord', 'web'] as const;

/** One of {@link PLATFORMS}. */
export type Platform = (typeof PLATFORMS)[number];

/** The person who sent the message, as the platform describes them. */
export interface ChatUser {
  /** The platform's user id, as a string (Telegram and Discord ids exceed 2^53). */
  readonly id: string;
  /** Display name, for logs and the instructors' review; never trusted for anything. */
  readonly name: string;
  /**
   * The client's language as the platform reports it (Telegram `language_code`, Discord
   * interaction `locale`, the browser's `navigator.language`), e.g. `ru`, `en-US`, `uk`.
   */
  readonly languageCode?: string;
}

/** Where the message was sent. */
export interface ChatInfo {
  /** The platform's chat / channel id, as a string. */
  readonly id: string;
  /** `private` for a one-to-one chat (or DM); `group` for groups, supergroups, guild channels. */
  readonly type: 'private' | 'group';
  /** Group or channel title, when there is one. */
  readonly title?: string;
}

/**
 * The image attached to the message, or to the message it replies to, not yet downloaded.
 * The core checks {@link declaredBytes} against its size limit before calling {@link fetch}, so
 * an oversized file is never downloaded; adapters should still refuse anything above their
 * platform's own download limit (Telegram Bot API: 20 MB) by setting `declaredBytes` honestly.
 *
 * @example
 * const image: ImageRef = {
 *   fetch: () => downloadTelegramFile(fileId),
 *   declaredBytes: photo.file_size,
 *   fileName: 'photo.jpg',
 * };
 */
export interface ImageRef {
  /** Downloads the bytes. Called at most once per update by the core. */
  fetch(): Promise<Uint8Array>;
  /** Size the platform announced before download, when it did. */
  readonly declaredBytes?: number;
  /** Original file name, when the platform gives one (informational only: formats are sniffed). */
  readonly fileName?: string;
}

/**
 * A command as typed: `/predict lenet-mnist` is `{ name: 'predict', args: 'lenet-mnist' }`.
 * Adapters strip the leading slash and any `@botname` suffix and lower-case the name. Adapters
 * with structured options (Discord slash commands) join the string options' values, in the order
 * the command declares them, with single spaces into `args`; image options become
 * {@link ChatContext.image}.
 */
export interface IncomingCommand {
  readonly name: string;
  /** Everything after the command name, trimmed; `''` when there is none. */
  readonly args: string;
}

/**
 * issue 16: a button under a reply. Pressing it comes back as a {@link ButtonPress} with
 * {@link data}, so the buttons keep working after a restart (no in-memory collectors).
 */
export interface ReplyButton {
  /** The button's label. */
  readonly text: string;
  /** At most 64 bytes (Telegram's `callback_data` limit; Discord's `custom_id` allows 100). */
  readonly data: string;
}

/** Extras of a reply: rows of buttons, for adapters that can show them. */
export interface ReplyOptions {
  readonly buttons?: readonly (readonly ReplyButton[])[];
}

/** issue 16: a press of one of the bot's {@link ReplyButton}s. */
export interface ButtonPress {
  /** The pressed button's {@link ReplyButton.data}. */
  readonly data: string;
  /**
   * Answers the press so the client stops waiting (Telegram `answerCallbackQuery`, a Discord
   * component interaction response); `text` is shown as a short notice to the presser alone.
   * Call at most once; an adapter answers silently when the core did not.
   */
  answer(text?: string): Promise<void>;
  /** Removes the buttons from the message that carried them and marks it with `note`. */
  finish(note: string): Promise<void>;
}

/** A message the bot sent, by the ids its platform edits it with. */
export interface SentMessageRef {
  /** The chat (Telegram) or channel (Discord) id. */
  readonly chatId: string;
  readonly messageId: string;
}

/** What an adapter may show while the core works (Telegram chat actions, Discord "thinking"). */
export type ChatAction = 'typing' | 'upload_photo';

/**
 * One incoming message or interaction, as an adapter fills it in. The reply functions are the
 * only way the core talks back; they may be called several times per update.
 *
 * @example
 * await core.handle({
 *   platform: 'telegram',
 *   user: { id: String(from.id), name: from.first_name, languageCode: from.language_code },
 *   chat: { id: String(chat.id), type: chat.type === 'private' ? 'private' : 'group' },
 *   messageId: String(message.message_id),
 *   command: { name: 'predict', args: '' },
 *   image: { fetch: () => download(fileId), declaredBytes: size },
 *   reply: async (text) => { await api.sendMessage(chat.id, text); },
 *   replyImage: async (png, caption) => { await api.sendPhoto(chat.id, new InputFile(png), { caption }); },
 *   action: async (kind) => { await api.sendChatAction(chat.id, kind); },
 * });
 */
export interface ChatContext {
  readonly platform: Platform;
  readonly user: ChatUser;
  readonly chat: ChatInfo;
  /** The platform's id of the incoming message (or interaction), as a string. */
  readonly messageId: string;
  /** The command, or undefined for a message without one (e.g. a bare photo). */
  readonly command?: IncomingCommand;
  /** The attached or replied-to image, if any. */
  readonly image?: ImageRef;
  /**
   * True for adapters that answer each message in one response (the web chat): `handle()` then
   * resolves only after a rate-limited update's late answer, instead of right after the notice.
   * Others (Telegram, Discord) send the late answer as a message of its own.
   */
  readonly waitsForAnswer?: boolean;
  /** issue 16: the platform id of the message this one replies to, when it is a reply. */
  readonly replyToMessageId?: string;
  /** issue 16: a button press instead of a message (the adapter leaves `command` unset). */
  readonly press?: ButtonPress;
  /**
   * issue 16, optional: sends a file (a zip export) with a caption. Adapters without it make
   * the commands that need it answer that the platform cannot receive files.
   */
  replyFile?(bytes: Uint8Array, fileName: string, caption: string): Promise<void>;
  /** The author of the message this one replies to, when it is a reply (`/grant` by reply). */
  readonly replyTo?: ChatUser;
  /**
   * Users the message mentions in a way the platform resolved to an id (Telegram text mentions,
   * Discord `<@id>` mentions and user options), in order.
   */
  readonly mentions?: readonly ChatUser[];
  /**
   * Set only by an adapter that verified the machine operator's secret (the web chat's
   * `?token=` URL): the core treats the user as admin. Never set from anything a remote user
   * can choose.
   */
  readonly operator?: boolean;
  /**
   * Optional: returns user-given text (a display name, a file name, an argument echoed in an
   * error) so that it shows literally in this chat's replies, where the platform formats plain
   * text anyway (Discord renders Markdown in every message: its adapters escape it). Absent:
   * replies show text as it is (Telegram, the web chat). Not for text inside code blocks.
   */
  readonly literal?: Literal;
  /**
   * Sends a text message in reply. Plain text: no Markdown or HTML. With buttons under it when
   * the adapter can show them (issue 16).
   */
  reply(text: string, options?: ReplyOptions): Promise<void>;
  /**
   * Optional: sends a text reply and returns where it is, so that it can be edited later (a
   * training job's progress). Adapters that cannot edit messages leave it out.
   */
  replyEditable?(text: string): Promise<SentMessageRef>;
  /**
   * Sends a PNG image with a plain-text caption (at most 1024 characters) in reply; with
   * buttons under it when the adapter can show them (issue 16).
   */
  replyImage(png: Uint8Array, caption: string, options?: ReplyOptions): Promise<void>;
  /**
   * Optional: shows a chat action ("typing...", "sending photo...") while the core works.
   * Failures are ignored.
   */
  action?(kind: ChatAction): Promise<void>;
}

/**
 * A copy of a message's parameters with the string values under `keys` (user-given text: a typed
 * argument, a layer or class name from a student's file) passed through the chat's `literal`
 * ({@link ChatContext.literal}), so that they show literally; the other values are unchanged.
 * Without `literal` (plain-text chats) the copy equals `params`.
 *
 * @example
 * literalParams({ layer: 'conv_1_', units: 8 }, ['layer'], escapeMarkdown);
 * // → { layer: 'conv\\_1\\_', units: 8 }
 */
export function literalParams<V>(
  params: Readonly<Record<string, V>>,
  keys: readonly string[],
  literal?: Literal,
): Record<string, V | string> {
  const out: Record<string, V | string> = { ...params };
  if (!literal) return out;
  for (const k of keys) {
    const v = params[k];
    if (typeof v === 'string') out[k] = literal(v);
  }
  return out;
}
