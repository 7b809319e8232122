/**
 * A fake Telegram Bot API server on 127.0.0.1 for the adapter's tests. It speaks the real
 * protocol, so grammY runs unmodified against it (`client.apiRoot`):
 *
 * - `POST /bot<token>/<method>` with a JSON, urlencoded or multipart/form-data body (grammY
 *   uploads files as multipart, with `attach://<name>` references and JSON-encoded objects);
 * - answers `{ ok: true, result }` or `{ ok: false, error_code, description, parameters? }`;
 * - `getUpdates` long-polls: it answers at once when updates at or after `offset` are queued,
 *   else waits up to `timeout` seconds for one; an update is dropped once a later call's
 *   `offset` confirms it;
 * - `GET /file/bot<token>/<file_path>` serves the files that `getFile` describes.
 *
 * Tests queue messages as users would send them, inject failures (429 "retry after", 500s),
 * and inspect what the bot sent.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import type {
  BotCommand,
  CallbackQuery,
  Chat,
  InlineKeyboardMarkup,
  Message,
  PhotoSize,
  Update,
  User,
  UserFromGetMe,
} from 'grammy/types';

/** The fake's own file store entry. */
export interface FakeFile {
  readonly file_id: string;
  readonly file_unique_id: string;
  /** What getFile reports (may differ from the bytes: "declared" sizes for tests). */
  readonly file_size: number | undefined;
  readonly file_path: string;
  readonly bytes: Uint8Array;
}

/** One API call the bot made, as parsed by the fake. */
export interface ApiCall {
  readonly method: string;
  readonly payload: Record<string, unknown>;
  /** The HTTP status the fake answered with. */
  readonly status: number;
}

/** A message the bot sent (sendMessage, sendPhoto, sendDocument), with the uploaded bytes. */
export interface SentMessage {
  readonly method: 'sendMessage' | 'sendPhoto' | 'sendDocument';
  readonly chatId: number;
  /** The message's id, as the bot got it back. */
  readonly messageId: number;
  readonly text?: string;
  readonly caption?: string;
  readonly photo?: Buffer;
  /** sendDocument's file and its name. */
  readonly document?: Buffer;
  readonly fileName?: string;
  /** The inline keyboard sent with the message, if any. */
  readonly replyMarkup?: InlineKeyboardMarkup;
  /** The message this one replies to (`reply_parameters.message_id`). */
  readonly replyTo?: number;
  readonly threadId?: number;
}

/** An edit of one of the bot's messages (text, caption or keyboard) the fake accepted. */
export interface EditedMessage {
  readonly method: 'editMessageCaption' | 'editMessageText' | 'editMessageReplyMarkup';
  readonly chatId: number;
  readonly messageId: number;
  /** The message's text after the edit (`''` for a photo). */
  readonly text: string;
  readonly caption?: string;
  /** The keyboard after the edit (no `reply_markup`: removed). */
  readonly replyMarkup?: InlineKeyboardMarkup;
  /** When the fake received it, ms since the epoch. */
  readonly at: number;
}

/** An `answerCallbackQuery` call. */
export interface CallbackAnswer {
  readonly callbackQueryId: string;
  readonly text?: string;
  readonly showAlert?: boolean;
}

/** A failure to answer instead of the method's result. */
export interface InjectedFailure {
  readonly error_code: number;
  readonly description: string;
  readonly parameters?: { readonly retry_after?: number };
}

/** Telegram's flood-control answer. */
export const TOO_MANY_REQUESTS: InjectedFailure = {
  error_code: 429,
  description: 'Too Many Requests: retry after 1',
  parameters: { retry_after: 1 },
};

/** What a test user sends. */
export interface UserMessage {
  readonly from: User;
  /** Default: the user's private chat. */
  readonly chat?: Chat;
  readonly text?: string;
  readonly caption?: string;
  /** A compressed photo: the fake adds a small, undecodable thumbnail size before it. */
  readonly photo?: Uint8Array | { readonly bytes: Uint8Array; readonly declaredSize?: number };
  readonly document?: {
    readonly bytes: Uint8Array;
    readonly fileName: string;
    readonly mimeType: string;
    /** The size to announce instead of the real one (a file "over 20 MB" without the bytes). */
    readonly declaredSize?: number;
    /** When true, the message does not announce a size at all; getFile still does. */
    readonly hideSize?: boolean;
  };
  readonly replyTo?: Message;
  readonly threadId?: number;
}

/** The Bot API's limit on `getFile`. */
const DOWNLOAD_LIMIT = 20 * 1024 * 1024;

/** A running fake. */
export interface FakeTelegram {
  /** `http://127.0.0.1:<port>`: pass as `TELEGRAM_API_ROOT`. */
  readonly apiRoot: string;
  readonly token: string;
  readonly me: UserFromGetMe;
  readonly calls: ApiCall[];
  readonly sent: SentMessage[];
  /** Accepted edits of the bot's messages (text, caption, keyboard), in order. */
  readonly edits: EditedMessage[];
  /** File paths served by the download endpoint, in order. */
  readonly downloads: string[];
  /** `setMyCommands` calls: the language (undefined: default) and the list. */
  readonly menus: { languageCode: string | undefined; commands: BotCommand[] }[];
  /** The last `setWebhook` payload, if any. */
  readonly webhook: Record<string, unknown> | undefined;
  /** A stored file by id. */
  file(fileId: string): FakeFile | undefined;
  /** Stores a file; its size as getFile reports it defaults to the bytes' length. */
  addFile(bytes: Uint8Array, declaredSize?: number): FakeFile;
  /** Builds a user's message (storing its files) without delivering it (e.g. to reply to). */
  message(m: UserMessage): Message;
  /** Builds and queues a user's message for getUpdates; returns it. */
  send(m: UserMessage): Message;
  /** Queues a message built with {@link message} as an update. */
  deliver(message: Message): Update;
  /** The next `times` calls of `method` get `failure` instead of their result. */
  failNext(method: string, times: number, failure?: InjectedFailure): void;
  /** Downloads of this file answer HTTP 500. */
  failDownload(fileId: string): void;
  /** `answerCallbackQuery` calls, in order. */
  readonly answers: CallbackAnswer[];
  /**
   * A user presses an inline button under one of the bot's messages: queues a `callback_query`
   * update with the button's `callback_data`; returns the query's id.
   */
  press(from: User, sent: SentMessage, data: string): string;
  /** Resolves when `predicate(sent)` holds; rejects after `timeoutMs`. */
  waitFor(predicate: (sent: readonly SentMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Messages the bot sent in reply to `messageId`. */
  repliesTo(messageId: number): SentMessage[];
  close(): Promise<void>;
}

class ApiFailure extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
  ) {
    super(description);
  }
}

/**
 * Starts the fake on a free port of 127.0.0.1.
 *
 * @example
 * const tg = await startFakeTelegram();
 * const bot = await startTelegram({ ...config, TELEGRAM_BOT_TOKEN: tg.token,
 *   TELEGRAM_API_ROOT: tg.apiRoot }, core, logger);
 * const msg = tg.send({ from: ann, photo: await readImg('7.png') });
 * await tg.waitFor(() => tg.repliesTo(msg.message_id).length > 0);
 */
export async function startFakeTelegram(
  options: { token?: string; username?: string } = {},
): Promise<FakeTelegram> {
  const token = options.token ?? '123456:TEST-fake-token_0123456789abcdefghij';
  const me: UserFromGetMe = {
    id: Number(token.split(':')[0]) || 123456,
    is_bot: true,
    first_name: 'CNN test bot',
    username: options.username ?? 'cnn_test_bot',
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
    can_connect_to_business: false,
    has_main_web_app: false,
    has_topics_enabled: false,
    allows_users_to_create_topics: false,
    can_manage_bots: false,
    supports_join_request_queries: false,
  };
  const calls: ApiCall[] = [];
  const sent: SentMessage[] = [];
  const edits: EditedMessage[] = [];
  const downloads: string[] = [];
  const menus: { languageCode: string | undefined; commands: BotCommand[] }[] = [];
  const files = new Map<string, FakeFile>();
  const filesByPath = new Map<string, FakeFile>();
  const failingDownloads = new Set<string>();
  const failures = new Map<string, { times: number; failure: InjectedFailure }>();
  const chats = new Map<number, Chat>();
  const answers: CallbackAnswer[] = [];
  /** The bot's messages by `chatId:messageId`, as they are now (edits applied). */
  const botMessages = new Map<string, Message>();
  /** Callback queries not yet answered (Telegram refuses a second answer). */
  const openQueries = new Set<string>();
  let nextQuery = 1;
  let queue: Update[] = [];
  let nextUpdateId = 1;
  let nextMessageId = 1;
  let nextFile = 1;
  let webhook: Record<string, unknown> | undefined;
  const waiters = new Set<() => void>();

  function addFile(bytes: Uint8Array, declaredSize?: number): FakeFile {
    const n = nextFile++;
    const file: FakeFile = {
      file_id: `FILE-${n}-${randomUUID()}`,
      file_unique_id: `U${n}`,
      file_size: declaredSize ?? bytes.length,
      file_path: `documents/file_${n}.bin`,
      bytes,
    };
    files.set(file.file_id, file);
    filesByPath.set(file.file_path, file);
    return file;
  }

  function message(m: UserMessage): Message {
    const chat: Chat = m.chat ?? {
      id: m.from.id,
      type: 'private',
      first_name: m.from.first_name,
    };
    chats.set(chat.id, chat);
    const base = {
      message_id: nextMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat,
      from: m.from,
      ...(m.text === undefined ? {} : { text: m.text }),
      ...(m.caption === undefined ? {} : { caption: m.caption }),
      ...(m.replyTo ? { reply_to_message: m.replyTo } : {}),
      ...(m.threadId === undefined
        ? {}
        : { message_thread_id: m.threadId, is_topic_message: true as const }),
    };
    if (m.photo) {
      const { bytes, declaredSize } =
        m.photo instanceof Uint8Array ? { bytes: m.photo, declaredSize: undefined } : m.photo;
      // A thumbnail whose bytes are no image: a bot that picks it fails visibly.
      const thumb = addFile(new TextEncoder().encode('not the largest size'));
      const full = addFile(bytes, declaredSize);
      const sizes: PhotoSize[] = [
        {
          file_id: thumb.file_id,
          file_unique_id: thumb.file_unique_id,
          width: 90,
          height: 90,
          file_size: thumb.bytes.length,
        },
        {
          file_id: full.file_id,
          file_unique_id: full.file_unique_id,
          width: 800,
          height: 800,
          ...(full.file_size === undefined ? {} : { file_size: full.file_size }),
        },
      ];
      return { ...base, photo: sizes } as Message;
    }
    if (m.document) {
      const d = m.document;
      const file = addFile(d.bytes, d.declaredSize);
      return {
        ...base,
        document: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          file_name: d.fileName,
          mime_type: d.mimeType,
          ...(d.hideSize || file.file_size === undefined ? {} : { file_size: file.file_size }),
        },
      } as Message;
    }
    return base as Message;
  }

  function deliver(msg: Message): Update {
    // Update.message excludes channel chats, which the fake never builds.
    const update = { update_id: nextUpdateId++, message: msg } as Update;
    queue.push(update);
    for (const w of waiters) w();
    return update;
  }

  function send(m: UserMessage): Message {
    const msg = message(m);
    deliver(msg);
    return msg;
  }

  // --- the API methods ------------------------------------------------------------------

  function chatOf(chatId: unknown): Chat {
    const id = Number(chatId);
    if (!Number.isSafeInteger(id)) throw new ApiFailure(400, 'Bad Request: chat not found');
    return chats.get(id) ?? { id, type: 'private', first_name: 'someone' };
  }

  /** The payload's inline keyboard, checked as Telegram does; undefined when there is none. */
  function keyboardOf(payload: Record<string, unknown>): InlineKeyboardMarkup | undefined {
    const markup = payload.reply_markup as InlineKeyboardMarkup | undefined;
    if (markup === undefined) return undefined;
    if (!Array.isArray(markup.inline_keyboard)) {
      throw new ApiFailure(400, "Bad Request: can't parse reply keyboard markup JSON object");
    }
    for (const row of markup.inline_keyboard) {
      for (const b of row) {
        const data = 'callback_data' in b ? b.callback_data : undefined;
        if (
          typeof b.text !== 'string' ||
          b.text === '' ||
          (data !== undefined && (Buffer.byteLength(data) < 1 || Buffer.byteLength(data) > 64))
        ) {
          throw new ApiFailure(400, 'Bad Request: BUTTON_DATA_INVALID');
        }
      }
    }
    return markup;
  }

  function sentMessage(payload: Record<string, unknown>, fields: object): Message {
    const markup = keyboardOf(payload);
    const msg = {
      message_id: nextMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat: chatOf(payload.chat_id),
      from: me,
      ...fields,
      ...(markup && markup.inline_keyboard.length > 0 ? { reply_markup: markup } : {}),
    } as Message;
    botMessages.set(`${msg.chat.id}:${msg.message_id}`, msg);
    return msg;
  }

  function record(
    method: SentMessage['method'],
    payload: Record<string, unknown>,
    result: Message,
    extra: Partial<SentMessage>,
  ): void {
    const reply = payload.reply_parameters as { message_id?: unknown } | undefined;
    const thread = payload.message_thread_id;
    sent.push({
      method,
      chatId: Number(payload.chat_id),
      messageId: result.message_id,
      ...(reply?.message_id === undefined ? {} : { replyTo: Number(reply.message_id) }),
      ...(thread === undefined ? {} : { threadId: Number(thread) }),
      ...(result.reply_markup ? { replyMarkup: result.reply_markup } : {}),
      ...extra,
    });
  }

  /** Applies an edit to one of the bot's messages, refusing what Telegram refuses. */
  function edit(method: EditedMessage['method'], payload: Record<string, unknown>): Message {
    const chatId = Number(payload.chat_id);
    const messageId = Number(payload.message_id);
    const msg = botMessages.get(`${chatId}:${messageId}`);
    if (!msg) throw new ApiFailure(400, 'Bad Request: message to edit not found');
    const markup = keyboardOf(payload);
    const keyboard = markup && markup.inline_keyboard.length > 0 ? markup : undefined;
    const next = { ...msg } as Message & Record<string, unknown>;
    delete next.reply_markup;
    if (keyboard) next.reply_markup = keyboard;
    if (method === 'editMessageCaption') {
      const caption = typeof payload.caption === 'string' ? payload.caption : undefined;
      if (caption !== undefined && caption.length > 1024)
        throw new ApiFailure(400, 'Bad Request: message caption is too long');
      if (caption === undefined) delete next.caption;
      else next.caption = caption;
    } else if (method === 'editMessageText') {
      if (msg.text === undefined)
        throw new ApiFailure(400, 'Bad Request: there is no text in the message to edit');
      if (typeof payload.text !== 'string' || payload.text === '')
        throw new ApiFailure(400, 'Bad Request: message text is empty');
      next.text = payload.text;
    }
    if (JSON.stringify(next) === JSON.stringify(msg)) {
      throw new ApiFailure(
        400,
        'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
      );
    }
    botMessages.set(`${chatId}:${messageId}`, next);
    edits.push({
      method,
      chatId,
      messageId,
      text: next.text ?? '',
      ...(next.caption === undefined ? {} : { caption: next.caption }),
      ...(keyboard ? { replyMarkup: keyboard } : {}),
      at: Date.now(),
    });
    return next;
  }

  function press(from: User, sentMsg: SentMessage, data: string): string {
    const msg = botMessages.get(`${sentMsg.chatId}:${sentMsg.messageId}`);
    if (!msg) throw new Error(`the bot sent no message ${sentMsg.messageId}`);
    const id = `Q${nextQuery++}`;
    openQueries.add(id);
    const query: CallbackQuery = {
      id,
      from,
      message: msg,
      chat_instance: `CI${msg.chat.id}`,
      data,
    };
    queue.push({ update_id: nextUpdateId++, callback_query: query });
    for (const w of waiters) w();
    return id;
  }

  async function getUpdates(
    payload: Record<string, unknown>,
    req: IncomingMessage,
  ): Promise<Update[]> {
    const offset = Number(payload.offset ?? 0);
    const limit = Math.min(100, Math.max(1, Number(payload.limit ?? 100)));
    const timeout = Math.max(0, Number(payload.timeout ?? 0));
    if (offset > 0) queue = queue.filter((u) => u.update_id >= offset);
    const ready = (): Update[] => queue.filter((u) => u.update_id >= offset).slice(0, limit);
    if (ready().length > 0 || timeout === 0) return ready();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        req.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeout * 1000);
      waiters.add(done);
      req.on('close', done);
    });
    return ready();
  }

  async function call(
    method: string,
    payload: Record<string, unknown>,
    uploads: Map<string, Buffer>,
    req: IncomingMessage,
    uploadNames: Map<string, string>,
  ): Promise<unknown> {
    switch (method) {
      case 'getMe':
        return me;
      case 'getUpdates':
        return getUpdates(payload, req);
      case 'deleteWebhook':
        webhook = undefined;
        return true;
      case 'setWebhook':
        if (typeof payload.url !== 'string') throw new ApiFailure(400, 'Bad Request: bad webhook');
        webhook = payload;
        return true;
      case 'getWebhookInfo':
        return { url: webhook?.url ?? '', has_custom_certificate: false, pending_update_count: 0 };
      case 'setMyCommands': {
        const commands = payload.commands as BotCommand[] | undefined;
        if (!Array.isArray(commands)) throw new ApiFailure(400, 'Bad Request: commands missing');
        for (const c of commands) {
          if (
            !/^[a-z0-9_]{1,32}$/.test(c.command) ||
            c.description.length < 1 ||
            c.description.length > 256
          ) {
            throw new ApiFailure(400, `Bad Request: BOT_COMMAND_INVALID ${c.command}`);
          }
        }
        const languageCode =
          typeof payload.language_code === 'string' ? payload.language_code : undefined;
        menus.push({ languageCode, commands });
        return true;
      }
      case 'getFile': {
        const file = files.get(String(payload.file_id));
        if (!file) throw new ApiFailure(400, 'Bad Request: invalid file_id');
        if ((file.file_size ?? 0) > DOWNLOAD_LIMIT)
          throw new ApiFailure(400, 'Bad Request: file is too big');
        return {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          ...(file.file_size === undefined ? {} : { file_size: file.file_size }),
          file_path: file.file_path,
        };
      }
      case 'sendChatAction':
        if (
          ![
            'typing',
            'upload_photo',
            'record_video',
            'upload_document',
            'choose_sticker',
            'find_location',
          ].includes(String(payload.action))
        ) {
          throw new ApiFailure(400, 'Bad Request: wrong parameter action in request');
        }
        chatOf(payload.chat_id);
        return true;
      case 'sendMessage': {
        const text = payload.text;
        if (typeof text !== 'string' || text.length === 0)
          throw new ApiFailure(400, 'Bad Request: message text is empty');
        if (text.length > 4096) throw new ApiFailure(400, 'Bad Request: message is too long');
        const result = sentMessage(payload, { text });
        record('sendMessage', payload, result, { text });
        return result;
      }
      case 'sendPhoto': {
        const ref = payload.photo;
        const attach =
          typeof ref === 'string' && ref.startsWith('attach://') ? ref.slice(9) : undefined;
        const photo = attach === undefined ? undefined : uploads.get(attach);
        if (!photo) throw new ApiFailure(400, 'Bad Request: there is no photo in the request');
        const caption = typeof payload.caption === 'string' ? payload.caption : undefined;
        if (caption !== undefined && caption.length > 1024)
          throw new ApiFailure(400, 'Bad Request: message caption is too long');
        const stored = addFile(photo);
        const result = sentMessage(payload, {
          photo: [
            { file_id: stored.file_id, file_unique_id: stored.file_unique_id, width: 1, height: 1 },
          ],
          ...(caption === undefined ? {} : { caption }),
        });
        record('sendPhoto', payload, result, {
          photo,
          ...(caption === undefined ? {} : { caption }),
        });
        return result;
      }
      case 'sendDocument': {
        const ref = payload.document;
        const attach =
          typeof ref === 'string' && ref.startsWith('attach://') ? ref.slice(9) : undefined;
        const document = attach === undefined ? undefined : uploads.get(attach);
        if (!document)
          throw new ApiFailure(400, 'Bad Request: there is no document in the request');
        const caption = typeof payload.caption === 'string' ? payload.caption : undefined;
        if (caption !== undefined && caption.length > 1024)
          throw new ApiFailure(400, 'Bad Request: message caption is too long');
        const stored = addFile(document);
        const fileName = attach === undefined ? undefined : uploadNames.get(attach);
        const result = sentMessage(payload, {
          document: {
            file_id: stored.file_id,
            file_unique_id: stored.file_unique_id,
            ...(fileName === undefined ? {} : { file_name: fileName }),
          },
          ...(caption === undefined ? {} : { caption }),
        });
        record('sendDocument', payload, result, {
          document,
          ...(fileName === undefined ? {} : { fileName }),
          ...(caption === undefined ? {} : { caption }),
        });
        return result;
      }
      case 'answerCallbackQuery': {
        const id = String(payload.callback_query_id);
        if (!openQueries.delete(id)) {
          throw new ApiFailure(
            400,
            'Bad Request: query is too old and response timeout expired or query ID is invalid',
          );
        }
        if (typeof payload.text === 'string' && payload.text.length > 200)
          throw new ApiFailure(400, 'Bad Request: MESSAGE_TOO_LONG');
        answers.push({
          callbackQueryId: id,
          ...(typeof payload.text === 'string' ? { text: payload.text } : {}),
          ...(payload.show_alert === true || payload.show_alert === 'true'
            ? { showAlert: true }
            : {}),
        });
        return true;
      }
      case 'editMessageCaption':
      case 'editMessageText':
      case 'editMessageReplyMarkup':
        return edit(method, payload);
      default:
        throw new ApiFailure(404, 'Not Found');
    }
  }

  // --- HTTP ------------------------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const fileMatch = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (req.method === 'GET' && fileMatch) {
      const file =
        fileMatch[1] === token
          ? filesByPath.get(decodeURIComponent(fileMatch[2] ?? ''))
          : undefined;
      if (!file) return json(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      downloads.push(file.file_path);
      if (failingDownloads.has(file.file_id)) {
        return json(res, 500, { ok: false, error_code: 500, description: 'Internal Server Error' });
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': file.bytes.length,
      });
      res.end(file.bytes);
      return;
    }
    const apiMatch = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!apiMatch) return json(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    if (apiMatch[1] !== token)
      return json(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const method = apiMatch[2] ?? '';
    const { payload, uploads, uploadNames } = await readBody(req, url);
    const failure = failures.get(method);
    if (failure && failure.times > 0) {
      failure.times--;
      calls.push({ method, payload, status: failure.failure.error_code });
      return json(res, failure.failure.error_code, { ok: false, ...failure.failure });
    }
    try {
      const result = await call(method, payload, uploads, req, uploadNames);
      calls.push({ method, payload, status: 200 });
      json(res, 200, { ok: true, result });
    } catch (e) {
      if (!(e instanceof ApiFailure)) throw e;
      calls.push({ method, payload, status: e.code });
      json(res, e.code, { ok: false, error_code: e.code, description: e.description });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { ok: false, error_code: 500, description: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    apiRoot: `http://127.0.0.1:${port}`,
    token,
    me,
    calls,
    sent,
    edits,
    downloads,
    menus,
    get webhook() {
      return webhook;
    },
    file: (fileId) => files.get(fileId),
    addFile,
    message,
    send,
    deliver,
    failNext(method, times, failure = TOO_MANY_REQUESTS) {
      failures.set(method, { times, failure });
    },
    failDownload(fileId) {
      failingDownloads.add(fileId);
    },
    answers,
    press,
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(sent)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out; the bot sent: ${JSON.stringify(sent.map(({ photo: _p, ...s }) => s))}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    repliesTo(messageId) {
      return sent.filter((s) => s.replyTo === messageId);
    },
    close: async () => {
      for (const w of waiters) w();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A field value as Telegram reads it: objects and arrays arrive JSON-encoded in forms. */
function fieldValue(v: string): unknown {
  if (/^\s*[[{]/.test(v)) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

/** Parses a request's parameters: query string, then a JSON, urlencoded or multipart body. */
async function readBody(
  req: IncomingMessage,
  url: URL,
): Promise<{
  payload: Record<string, unknown>;
  uploads: Map<string, Buffer>;
  uploadNames: Map<string, string>;
}> {
  const payload: Record<string, unknown> = {};
  const uploads = new Map<string, Buffer>();
  const uploadNames = new Map<string, string>();
  for (const [k, v] of url.searchParams) payload[k] = fieldValue(v);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    await new Promise<void>((resolve, reject) => {
      const bb = busboy({ headers: req.headers });
      bb.on('field', (name, value) => {
        payload[name] = fieldValue(value);
      });
      bb.on('file', (name, stream, info) => {
        if (info.filename) uploadNames.set(name, info.filename);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => uploads.set(name, Buffer.concat(chunks)));
      });
      bb.on('close', resolve);
      bb.on('error', reject);
      req.pipe(bb);
    });
    return { payload, uploads, uploadNames };
  }
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { payload, uploads, uploadNames };
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(text)) payload[k] = fieldValue(v);
  } else {
    Object.assign(payload, JSON.parse(text) as Record<string, unknown>);
  }
  return { payload, uploads, uploadNames };
}
