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
  Chat,
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

/** A message the bot sent (sendMessage or sendPhoto), with the uploaded photo's bytes. */
export interface SentMessage {
  readonly method: 'sendMessage' | 'sendPhoto';
  readonly chatId: number;
  readonly text?: string;
  readonly caption?: string;
  readonly photo?: Buffer;
  /** The message this one replies to (`reply_parameters.message_id`). */
  readonly replyTo?: number;
  readonly threadId?: number;
  /** The id the fake gave the message. */
  readonly messageId?: number;
}

/** An `editMessageText` the fake accepted. */
export interface EditedMessage {
  readonly chatId: number;
  readonly messageId: number;
  readonly text: string;
  /** When the fake received it, ms since the epoch. */
  readonly at: number;
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
  /** Accepted `editMessageText` calls, in order. */
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
  /** The text of every message the bot sent, by `chat:message`. */
  const botTexts = new Map<string, string>();
  const downloads: string[] = [];
  const menus: { languageCode: string | undefined; commands: BotCommand[] }[] = [];
  const files = new Map<string, FakeFile>();
  const filesByPath = new Map<string, FakeFile>();
  const failingDownloads = new Set<string>();
  const failures = new Map<string, { times: number; failure: InjectedFailure }>();
  const chats = new Map<number, Chat>();
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

  function sentMessage(payload: Record<string, unknown>, fields: object): Message {
    return {
      message_id: nextMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat: chatOf(payload.chat_id),
      from: me,
      ...fields,
    };
  }

  function record(
    method: 'sendMessage' | 'sendPhoto',
    payload: Record<string, unknown>,
    extra: Partial<SentMessage>,
  ): void {
    const reply = payload.reply_parameters as { message_id?: unknown } | undefined;
    const thread = payload.message_thread_id;
    sent.push({
      method,
      chatId: Number(payload.chat_id),
      ...(reply?.message_id === undefined ? {} : { replyTo: Number(reply.message_id) }),
      ...(thread === undefined ? {} : { threadId: Number(thread) }),
      ...extra,
    });
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
        record('sendMessage', payload, { text, messageId: result.message_id });
        botTexts.set(`${result.chat.id}:${result.message_id}`, text);
        return result;
      }
      case 'editMessageText': {
        const text = payload.text;
        const key = `${String(payload.chat_id)}:${String(payload.message_id)}`;
        const old = botTexts.get(key);
        if (old === undefined) throw new ApiFailure(400, 'Bad Request: message to edit not found');
        if (typeof text !== 'string' || text.length === 0)
          throw new ApiFailure(400, 'Bad Request: message text is empty');
        if (text === old) {
          throw new ApiFailure(
            400,
            'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
          );
        }
        botTexts.set(key, text);
        edits.push({
          chatId: Number(payload.chat_id),
          messageId: Number(payload.message_id),
          text,
          at: Date.now(),
        });
        return {
          message_id: Number(payload.message_id),
          date: Math.floor(Date.now() / 1000),
          edit_date: Math.floor(Date.now() / 1000),
          chat: chatOf(payload.chat_id),
          from: me,
          text,
        };
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
        record('sendPhoto', payload, {
          photo,
          messageId: result.message_id,
          ...(caption === undefined ? {} : { caption }),
        });
        return result;
      }
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
    const { payload, uploads } = await readBody(req, url);
    const failure = failures.get(method);
    if (failure && failure.times > 0) {
      failure.times--;
      calls.push({ method, payload, status: failure.failure.error_code });
      return json(res, failure.failure.error_code, { ok: false, ...failure.failure });
    }
    try {
      const result = await call(method, payload, uploads, req);
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
): Promise<{ payload: Record<string, unknown>; uploads: Map<string, Buffer> }> {
  const payload: Record<string, unknown> = {};
  const uploads = new Map<string, Buffer>();
  for (const [k, v] of url.searchParams) payload[k] = fieldValue(v);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    await new Promise<void>((resolve, reject) => {
      const bb = busboy({ headers: req.headers });
      bb.on('field', (name, value) => {
        payload[name] = fieldValue(value);
      });
      bb.on('file', (name, stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => uploads.set(name, Buffer.concat(chunks)));
      });
      bb.on('close', resolve);
      bb.on('error', reject);
      req.pipe(bb);
    });
    return { payload, uploads };
  }
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { payload, uploads };
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(text)) payload[k] = fieldValue(v);
  } else {
    Object.assign(payload, JSON.parse(text) as Record<string, unknown>);
  }
  return { payload, uploads };
}
