/**
 * The local web chat: a third thin adapter over the core, so anyone can try the bot on a fresh
 * machine before creating a Telegram or Discord bot. One static page and one endpoint, on
 * 127.0.0.1 only.
 *
 * Why fastify (+ @fastify/multipart): image uploads need a streaming multipart parser with
 * per-file size limits (busboy underneath), which node:http does not have; fastify adds body
 * limits, a clean `close()` that stops accepting and lets in-flight requests finish, and
 * `inject()` for tests. Both are maintained by the fastify team and have no native parts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import cookie from '@fastify/cookie';
import multipart from '@fastify/multipart';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type {
  ButtonPress,
  ChatContext,
  ChatMessenger,
  Core,
  ImageRef,
  ReplyOptions,
} from '../../core/index.ts';
import { parseCommandText } from '../../core/index.ts';
import { WebUpdates, type WebUpdatesAnswer } from './updates.ts';

const PAGE = readFileSync(new URL('./page.html', import.meta.url), 'utf8');
/** In the page: where its long poll starts (issue 14), filled in when it is served. */
const UPDATES_AFTER = 'data-updates-after="0"';

/** issue 16: rows of buttons under a reply; pressing one posts its `data` as `press`. */
export type WebButtons = readonly (readonly { readonly text: string; readonly data: string }[])[];

/** One reply of the core, as the web page receives it. */
export type WebReply =
  | {
      readonly type: 'text';
      readonly text: string;
      readonly buttons?: WebButtons;
      /** issue 14: set on a message edited later (a job's progress): see `GET /api/updates`. */
      readonly messageId?: string;
    }
  | {
      readonly type: 'image';
      readonly caption: string;
      readonly mimeType: 'image/png';
      /** The PNG, base64. */
      readonly data: string;
      readonly buttons?: WebButtons;
    }
  /** issue 16: the answer to a button press, for the presser. */
  | { readonly type: 'notice'; readonly text: string }
  /** issue 16: the pressed message's buttons are done: remove them and add the note. */
  | { readonly type: 'finish'; readonly note: string }
  /** issue 16: a file to download (an `/export` zip). */
  | {
      readonly type: 'file';
      readonly fileName: string;
      readonly caption: string;
      readonly mimeType: string;
      /** The bytes, base64. */
      readonly data: string;
    };

/** The buttons of a reply, if it has any. */
function buttonsOf(options: ReplyOptions | undefined): { buttons?: WebButtons } {
  const rows = options?.buttons;
  return rows && rows.length > 0
    ? { buttons: rows.map((row) => row.map((b) => ({ text: b.text, data: b.data }))) }
    : {};
}

/** The body of `POST /api/messages`' answer. */
export interface WebAnswer {
  readonly replies: WebReply[];
}

/** Options of {@link buildWebChat}. */
export interface WebChatOptions {
  /** Largest accepted upload, bytes (the core refuses larger ones with a localized message). */
  readonly maxImageBytes: number;
  readonly logger: Logger;
  /**
   * Key that signs the identity cookie (`WEB_SESSION_SECRET`); unset: a random one per start, so
   * identities (and their `/history`) last until the server restarts.
   */
  readonly sessionSecret?: string;
  /** Most seconds a request may take to arrive whole (default 30). */
  readonly requestTimeoutSeconds?: number;
  /** Most uploads handled at once; more are answered 503 with `Retry-After` (default 4). */
  readonly maxConcurrentUploads?: number;
  /**
   * The operator's secret: opening `/?token=<it>` sets an HttpOnly cookie, and messages that
   * carry it come from the machine's operator, who is admin here (as Jupyter's token). Without
   * it every web-chat user is a student.
   */
  readonly operatorToken?: string;
  /**
   * issue 14: where later edits of the chat's messages wait for the page (a training job's
   * progress); unset: a store of the server's own.
   */
  readonly updates?: WebUpdates;
  /** Longest wait of one `GET /api/updates` long poll, ms (default 25 000). */
  readonly maxPollMs?: number;
}

/** The cookie holding the operator token once the page was opened with it. */
const OPERATOR_COOKIE = 'cnn_operator';

/** True when `given` is the token (constant time). */
function tokenMatches(token: string | undefined, given: string | undefined): boolean {
  if (token === undefined || given === undefined) return false;
  const a = Buffer.from(token);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What the page sends besides the image. The sender's identity is not in it: see the cookie. */
interface WebMessage {
  text: string;
  userName: string;
  language: string | undefined;
  /** issue 16: the data of a pressed button, instead of a message. */
  press: string | undefined;
}

/** The identity cookie: a random id the server assigned, signed with the session secret. */
export const IDENTITY_COOKIE = 'cnn_web_id';

/**
 * Headers on every answer (issue 19): no MIME sniffing of the JSON or the page, no framing of the
 * page by another site (clickjacking), no referrer leaving it.
 */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

const FIELD_LIMIT = 2048;

/** The browser's preferred language from `Accept-Language` (`ru-RU,ru;q=0.9` -> `ru-RU`). */
function acceptLanguage(header: string | undefined): string | undefined {
  const first = header?.split(',')[0]?.split(';')[0]?.trim();
  return first === '' || first === '*' ? undefined : first;
}

/** True when the request names this machine as its host (not a rebinding DNS name). */
function isLocalHost(req: FastifyRequest): boolean {
  const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
  return ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

/**
 * Refuses requests from other web sites (a page elsewhere posting to localhost) and from other
 * host names (DNS rebinding): only the page this server serves may use the API.
 */
function isOwnPage(req: FastifyRequest): boolean {
  if (!isLocalHost(req)) return false;
  const host = req.headers.host ?? '';
  const origin = req.headers.origin;
  return origin === undefined || origin === `http://${host}`;
}

const cleanField = (v: unknown, fallback: string): string =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, FIELD_LIMIT) : fallback;

/**
 * Builds the web chat server (not listening): `GET /` serves the page, `POST /api/messages`
 * takes `multipart/form-data` (`text`, `userName`, `language`, optional file `image`) or JSON
 * (`{ text, userName, language }`), hands one update to the core, and answers with its replies.
 *
 * The sender is who the signed identity cookie says, an id the server assigned (issue 19): a
 * `userId` the client sends is ignored, so nobody can act as, or read the history of, another
 * user, nor dodge the rate limit by changing it. Hardening: every answer carries `nosniff` and
 * no-framing headers; a request must arrive whole within `requestTimeoutSeconds`; at most
 * `maxConcurrentUploads` uploads at once (503 beyond); a malformed form is a logged 400.
 *
 * @example
 * const app = buildWebChat(core, { maxImageBytes: 20 << 20, logger });
 * await app.listen({ host: '127.0.0.1', port: 0 });
 */
export function buildWebChat(core: Core, options: WebChatOptions): FastifyInstance {
  // Typed as Fastify's logger (pino's, minus its generics) so the app has the default type.
  const logger: FastifyBaseLogger = options.logger.child({ adapter: 'web' });
  const requestTimeoutMs = (options.requestTimeoutSeconds ?? 30) * 1000;
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // Node enforces the request timeout on a timer that runs every `connectionsCheckingInterval`
    // (30 s by default): check every second so a slow sender is cut off on time.
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: Math.min(requestTimeoutMs, 10_000),
          connectionsCheckingInterval: 1000,
        },
        handler,
      ),
  });
  const sessionSecret = options.sessionSecret ?? randomBytes(32).toString('base64url');
  void app.register(cookie, { secret: sessionSecret });
  app.addHook('onSend', async (_req, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });
  // Errors of the request itself (bad JSON, oversized body...) are the client's: logged, 4xx.
  app.setErrorHandler(async (error: { statusCode?: number }, _req, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) logger.error({ err: error }, 'web chat request failed');
    else logger.warn({ err: error, status }, 'bad web chat request');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : 'bad request' });
  });
  const maxUploads = options.maxConcurrentUploads ?? 4;
  let uploads = 0;

  /** The sender's id from the signed cookie; a new random one (and its cookie) when absent. */
  function identity(req: FastifyRequest, reply: FastifyReply): string {
    const raw = req.cookies[IDENTITY_COOKIE];
    if (raw !== undefined) {
      const unsigned = req.unsignCookie(raw);
      if (unsigned.valid && unsigned.value !== null) return unsigned.value;
    }
    const id = `w${randomBytes(12).toString('base64url')}`;
    void reply.setCookie(IDENTITY_COOKIE, id, {
      signed: true,
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      maxAge: 365 * 86_400,
    });
    return id;
  }
  void app.register(multipart, {
    throwFileSizeLimit: false,
    limits: {
      fileSize: options.maxImageBytes,
      files: 1,
      fields: 8,
      fieldSize: FIELD_LIMIT,
      parts: 9,
    },
  });
  let nextMessageId = 1;
  // Ids of the messages a job edits later (`b<boot>-<n>`): the job outlives a restart and keeps
  // editing the id it stored, so ids must not repeat from one start to the next.
  const boot = randomBytes(4).toString('hex');
  let nextBotMessageId = 1;
  const updates = options.updates ?? new WebUpdates();
  const maxPollMs = options.maxPollMs ?? 25_000;
  // Waiting polls end at once, so closing never waits for them.
  app.addHook('preClose', (done) => {
    updates.close();
    done();
  });

  app.get('/', async (req, reply) => {
    const query = req.query as Record<string, unknown>;
    const given = typeof query.token === 'string' ? query.token : undefined;
    if (given !== undefined && isLocalHost(req) && tokenMatches(options.operatorToken, given)) {
      // The token leaves the address bar (and the history) for a cookie scripts cannot read.
      return reply
        .header('set-cookie', `${OPERATOR_COOKIE}=${given}; HttpOnly; SameSite=Strict; Path=/`)
        .redirect('/');
    }
    identity(req, reply);
    await reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'",
      )
      // The page's long poll starts after the updates there are now: a reload shows no old ones.
      .send(PAGE.replace(UPDATES_AFTER, `data-updates-after="${updates.last}"`));
  });

  /**
   * issue 14: the sender's updates after `after` (edits of earlier answers, images under them),
   * waiting up to `wait` ms (at most `maxPollMs`) for the first one.
   */
  app.get('/api/updates', async (req, reply) => {
    if (!isOwnPage(req)) return reply.code(403).send({ error: 'forbidden' });
    const userId = identity(req, reply);
    const query = req.query as Record<string, unknown>;
    const after = Number(query.after ?? 0);
    const wait = Number(query.wait ?? maxPollMs);
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isFinite(wait) || wait < 0) {
      return reply.code(400).send({ error: 'after and wait are counts' });
    }
    const answer: WebUpdatesAnswer = await updates.since(userId, after, Math.min(wait, maxPollMs));
    return reply.header('cache-control', 'no-store').send(answer);
  });

  app.post('/api/messages', async (req, reply) => {
    if (!isOwnPage(req)) return reply.code(403).send({ error: 'forbidden' });
    const userId = identity(req, reply);
    let message: WebMessage;
    let image: ImageRef | undefined;
    if (req.isMultipart()) {
      if (uploads >= maxUploads) {
        logger.warn({ uploads }, 'too many uploads at once');
        return reply.code(503).header('retry-after', '5').send({ error: 'busy' });
      }
      uploads++;
      try {
        const fields: Record<string, string> = {};
        try {
          for await (const part of req.parts()) {
            if (part.type === 'file') {
              const bytes = await part.toBuffer();
              if (part.fieldname !== 'image') continue;
              const fileName = part.filename;
              image = {
                fetch: () => Promise.resolve(new Uint8Array(bytes)),
                // Over the limit the parser kept only the first bytes: declare the request's
                // size (an upper bound of the file's) so the core refuses it without them.
                ...(part.file.truncated
                  ? {
                      declaredBytes: Math.max(
                        Number(req.headers['content-length'] ?? 0) || 0,
                        options.maxImageBytes + 1,
                      ),
                    }
                  : {}),
                ...(fileName ? { fileName } : {}),
              };
            } else if (typeof part.value === 'string') {
              fields[part.fieldname] = part.value;
            }
          }
        } catch (e) {
          // A broken form (cut short, no boundary, bad part headers) is the client's fault.
          logger.warn({ err: e }, 'malformed multipart request');
          return await reply.code(400).send({ error: 'malformed multipart/form-data' });
        }
        message = toMessage(fields, req);
        return await answer(req, reply, message, image, userId);
      } finally {
        uploads--;
      }
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    message = toMessage(body, req);
    return answer(req, reply, message, image, userId);
  });

  async function answer(
    req: FastifyRequest,
    reply: FastifyReply,
    message: WebMessage,
    image: ImageRef | undefined,
    userId: string,
  ): Promise<FastifyReply> {
    const operator = tokenMatches(options.operatorToken, req.cookies[OPERATOR_COOKIE]);
    const result = await handle(message, image, userId, operator);
    return reply.header('cache-control', 'no-store').send(result);
  }

  function toMessage(fields: Record<string, unknown>, req: FastifyRequest): WebMessage {
    return {
      text: cleanField(fields.text, ''),
      userName: cleanField(fields.userName, 'web'),
      language: cleanField(fields.language, '') || acceptLanguage(req.headers['accept-language']),
      press: cleanField(fields.press, '') || undefined,
    };
  }

  async function handle(
    message: WebMessage,
    image: ImageRef | undefined,
    userId: string,
    operator: boolean,
  ): Promise<WebAnswer> {
    const replies: WebReply[] = [];
    const pressData = message.press;
    const command = pressData === undefined ? parseCommandText(message.text) : undefined;
    const press: ButtonPress | undefined =
      pressData === undefined
        ? undefined
        : {
            data: pressData,
            answer: (text) => {
              if (text !== undefined) replies.push({ type: 'notice', text });
              return Promise.resolve();
            },
            finish: (note) => {
              replies.push({ type: 'finish', note });
              return Promise.resolve();
            },
          };
    const ctx: ChatContext = {
      platform: 'web',
      user: {
        id: userId,
        name: message.userName,
        ...(message.language ? { languageCode: message.language } : {}),
      },
      chat: { id: userId, type: 'private' },
      // One HTTP response per message: a rate-limited message's late answer must come in it.
      waitsForAnswer: true,
      // Per boot too: a label button or a reply names a stored submission by chat and message id.
      messageId: `${boot}-${nextMessageId++}`,
      ...(command ? { command } : {}),
      ...(image && !press ? { image } : {}),
      ...(press ? { press } : {}),
      ...(operator ? { operator } : {}),
      reply: (text, options) => {
        replies.push({ type: 'text', text, ...buttonsOf(options) });
        return Promise.resolve();
      },
      // issue 14: a message the trainer edits later (through `updates`, by chat and message id).
      replyEditable: (text) => {
        const messageId = `b${boot}-${nextBotMessageId++}`;
        replies.push({ type: 'text', text, messageId });
        return Promise.resolve({ chatId: userId, messageId });
      },
      replyImage: (png, caption, options) => {
        replies.push({
          type: 'image',
          caption,
          mimeType: 'image/png',
          data: Buffer.from(png).toString('base64'),
          ...buttonsOf(options),
        });
        return Promise.resolve();
      },
      replyFile: (bytes, fileName, caption) => {
        replies.push({
          type: 'file',
          fileName,
          caption,
          mimeType: fileName.endsWith('.zip') ? 'application/zip' : 'application/octet-stream',
          data: Buffer.from(bytes).toString('base64'),
        });
        return Promise.resolve();
      },
    };
    await core.handle(ctx);
    return { replies };
  }

  return app;
}

/** A started web chat. */
export interface RunningWebChat {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** issue 14: edits the chat's messages (the trainer's progress reporter uses it). */
  readonly messenger: ChatMessenger;
  /** Stops accepting connections and waits for requests in flight. */
  stop(): Promise<void>;
}

/**
 * Starts the web chat on 127.0.0.1.
 * @param port 0 picks a free port (tests).
 */
export async function startWebChat(
  core: Core,
  options: WebChatOptions & { readonly port: number },
): Promise<RunningWebChat> {
  const updates = options.updates ?? new WebUpdates();
  const app = buildWebChat(core, { ...options, updates });
  await app.listen({ host: '127.0.0.1', port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://127.0.0.1:${port}/`,
    messenger: updates.messenger(),
    stop: () => app.close(),
  };
}
