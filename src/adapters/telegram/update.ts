/**
 * Telegram message -> the core's vocabulary. Pure: no API calls, so the rules (which photo size,
 * which messages count, whose command it is) are testable without a server.
 */
import type { Message, PhotoSize } from 'grammy/types';
import type { ChatInfo, ChatUser, IncomingCommand } from '../../core/index.ts';
import { parseCommandText } from '../../core/index.ts';

/** A file of a message, not yet downloaded. */
export interface TelegramFileRef {
  readonly fileId: string;
  /** Size Telegram announced, when it did. */
  readonly fileSize?: number;
  readonly fileName?: string;
}

/** What the core needs from one message; the adapter adds the reply functions. */
export interface TranslatedMessage {
  readonly user: ChatUser;
  readonly chat: ChatInfo;
  readonly messageId: string;
  /** Forum topic the message was sent in, so replies go to the same topic. */
  readonly threadId?: number;
  readonly command?: IncomingCommand;
  /** The attached file, or for a command the replied-to message's photo or document. */
  readonly file?: TelegramFileRef;
  /** issue 16: the id of the message this one replies to (`/label` as a reply to a photo). */
  readonly replyToMessageId?: string;
  /** The author of the replied-to message (not a bot). */
  readonly replyTo?: ChatUser;
  /** Users named by text mentions (users without a username, which Telegram resolves). */
  readonly mentions?: readonly ChatUser[];
}

/** A Telegram user as the core's {@link ChatUser}. */
function chatUserOf(from: {
  id: number;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}): ChatUser {
  const name = [from.first_name, from.last_name].filter(Boolean).join(' ');
  return {
    id: String(from.id),
    name: name || from.username || String(from.id),
    ...(from.language_code ? { languageCode: from.language_code } : {}),
  };
}

/**
 * Translates a message for the core, or returns undefined for one the bot should not see:
 * messages from bots, channel posts, commands addressed to another bot (`/predict@other_bot`),
 * and messages with neither text, caption, photo nor document (stickers, voice, service messages).
 *
 * A command's image is the message's own photo or document, else the replied-to message's. A
 * reply without a command never takes the replied-to photo: in a group, "nice!" under a photo is
 * conversation, not a request.
 *
 * @param botUsername the bot's own username (from getMe), without `@`.
 * @example
 * translateMessage(ctx.message, ctx.me.username);
 * // { user: { id: '42', name: 'Ann', languageCode: 'ru' }, chat: { id: '42', type: 'private' },
 * //   messageId: '7', command: { name: 'predict', args: '' }, file: { fileId: 'AgAC...', fileSize: 51234 } }
 */
export function translateMessage(
  message: Message,
  botUsername: string,
): TranslatedMessage | undefined {
  const from = message.from;
  if (!from || from.is_bot || message.chat.type === 'channel') return undefined;
  const text = message.text ?? message.caption;
  const own = fileOf(message);
  if (text === undefined && !own) return undefined;
  const addressee = addressedTo(text);
  if (addressee !== undefined && addressee !== botUsername.toLowerCase()) return undefined;
  const command = parseCommandText(text);
  const replied = message.reply_to_message;
  const file = own ?? (command && replied ? fileOf(replied) : undefined);
  const title = 'title' in message.chat ? message.chat.title : undefined;
  const repliedFrom = replied?.from && !replied.from.is_bot ? replied.from : undefined;
  const mentions = (message.entities ?? message.caption_entities ?? []).flatMap((e) =>
    e.type === 'text_mention' ? [chatUserOf(e.user)] : [],
  );
  return {
    user: chatUserOf(from),
    chat: {
      id: String(message.chat.id),
      type: message.chat.type === 'private' ? 'private' : 'group',
      ...(title ? { title } : {}),
    },
    messageId: String(message.message_id),
    ...(message.is_topic_message && message.message_thread_id !== undefined
      ? { threadId: message.message_thread_id }
      : {}),
    ...(command ? { command } : {}),
    ...(file ? { file } : {}),
    ...(replied ? { replyToMessageId: String(replied.message_id) } : {}),
    ...(repliedFrom ? { replyTo: chatUserOf(repliedFrom) } : {}),
    ...(mentions.length > 0 ? { mentions } : {}),
  };
}

/** The bot a command is addressed to (`/predict@Cnn_Bot` -> `cnn_bot`), if it names one. */
function addressedTo(text: string | undefined): string | undefined {
  return /^\/[A-Za-z0-9_]+@([A-Za-z0-9_]+)/.exec(text?.trim() ?? '')?.[1]?.toLowerCase();
}

/**
 * A message's image: the largest size of a compressed photo, or a document of any type (the
 * core judges files by their bytes, not by the MIME type the client claims).
 */
function fileOf(message: Message): TelegramFileRef | undefined {
  const photo = largestPhoto(message.photo);
  if (photo) {
    return {
      fileId: photo.file_id,
      ...(photo.file_size === undefined ? {} : { fileSize: photo.file_size }),
      fileName: 'photo.jpg',
    };
  }
  const doc = message.document;
  if (doc) {
    return {
      fileId: doc.file_id,
      ...(doc.file_size === undefined ? {} : { fileSize: doc.file_size }),
      ...(doc.file_name ? { fileName: doc.file_name } : {}),
    };
  }
  return undefined;
}

/** The size with the most pixels (Telegram lists them smallest first, but does not promise it). */
export function largestPhoto(sizes: readonly PhotoSize[] | undefined): PhotoSize | undefined {
  let best: PhotoSize | undefined;
  for (const s of sizes ?? []) {
    if (!best || s.width * s.height > best.width * best.height) best = s;
  }
  return best;
}
