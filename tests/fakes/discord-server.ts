/**
 * A fake Discord on 127.0.0.1 for tests: the REST API (v10) and the gateway, speaking the real
 * protocol closely enough for the real discord.js to log in, receive slash commands and messages,
 * and answer them. Point the client at {@link FakeDiscord.apiRoot} (`rest: { api }`); the gateway
 * address comes from `GET /gateway/bot`, as with Discord.
 *
 * Gateway: HELLO (op 10) on connect, IDENTIFY (op 2) -> READY and GUILD_CREATE (one guild with one
 * text channel), heartbeats (op 1) -> ACK (op 11), RESUME (op 6) -> RESUMED; then the test
 * dispatches INTERACTION_CREATE and MESSAGE_CREATE. REST: the routes discord.js calls for these
 * (interaction callbacks, webhook edits and follow-ups, channel messages and their edits by
 * channel and message id with the bot token, command registration), plus downloads of the
 * attachments the fake hosts. {@link FakeDiscord.expireInteraction} makes an interaction's token
 * invalid, as Discord does 15 minutes after the interaction (401, code 50027). Every request is recorded, multipart bodies
 * parsed; a route the fake does not know is answered 404 and listed in `unknownRoutes`.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A file of a multipart request body. */
export interface RecordedFile {
  readonly field: string;
  readonly name: string;
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

/** One REST request the fake received. */
export interface RecordedRequest {
  readonly method: string;
  /** Path without the `/api/v10` prefix, e.g. `/interactions/1/tok/callback`. */
  readonly route: string;
  readonly query: URLSearchParams;
  readonly authorization: string | undefined;
  readonly contentType: string;
  /** The JSON body, or a multipart body's `payload_json`; undefined when there is none. */
  readonly body: unknown;
  readonly files: readonly RecordedFile[];
  /** The status the fake answered with. */
  readonly status: number;
}

/** One edit of one of the bot's messages, in the order the fake applied them. */
export interface MessageEdit {
  readonly messageId: string;
  readonly content: string;
  /** `channel`: `PATCH /channels/{c}/messages/{m}` with the bot token; `webhook`: an interaction's. */
  readonly via: 'channel' | 'webhook';
  readonly at: number;
}

/** A file the fake hosts, described as Discord describes an attachment. */
export interface FakeAttachment {
  readonly id: string;
  readonly filename: string;
  readonly size: number;
  readonly url: string;
  readonly proxy_url: string;
  readonly content_type?: string;
}

/** Options of {@link startFakeDiscord}. */
export interface FakeDiscordOptions {
  /** The bot token the fake accepts. */
  readonly token: string;
  readonly applicationId?: string;
  /** Sent in HELLO; short in tests so heartbeats happen (default 41 250 ms, Discord's). */
  readonly heartbeatIntervalMs?: number;
}

/** A user as the fake describes them. */
export interface FakeUser {
  readonly id: string;
  readonly username: string;
  readonly global_name: string | null;
}

/** A slash command invocation to dispatch. */
export interface SlashCommandInvocation {
  readonly name: string;
  /** String options, by name, in the order to send them. */
  readonly strings?: Readonly<Record<string, string>>;
  /** Attachment options, by name. */
  readonly attachments?: Readonly<Record<string, FakeAttachment>>;
  /** The client's locale (`en-US`, `ru`...). */
  readonly locale?: string;
  readonly user?: FakeUser;
  /** Sent from a DM instead of the guild channel. */
  readonly dm?: boolean;
}

/** A message to dispatch as MESSAGE_CREATE. */
export interface MessageInvocation {
  readonly content: string;
  readonly attachments?: readonly FakeAttachment[];
  /** Users mentioned (the bot, usually). */
  readonly mentions?: readonly FakeUser[];
  readonly user?: FakeUser;
  /** Sent in a DM channel (no guild) instead of the guild channel. */
  readonly dm?: boolean;
}

/** issue 16: a press of a button under one of the bot's messages. */
export interface ButtonPressInvocation {
  /** The bot's message carrying the button. */
  readonly messageId: string;
  readonly customId: string;
  readonly user?: FakeUser;
  readonly locale?: string;
  readonly dm?: boolean;
}

/** The running fake. */
export interface FakeDiscord {
  /** For discord.js's `rest.api`: `http://127.0.0.1:<port>/api`. */
  readonly apiRoot: string;
  readonly gatewayUrl: string;
  readonly applicationId: string;
  readonly bot: FakeUser;
  readonly guildId: string;
  readonly channelId: string;
  readonly dmChannelId: string;
  readonly requests: readonly RecordedRequest[];
  /** `METHOD /route` of every request no handler matched. */
  readonly unknownRoutes: readonly string[];
  readonly gateway: {
    /** The IDENTIFY payloads received. */
    readonly identifies: readonly Record<string, unknown>[];
    /** Query strings of the gateway connections (`v=10&encoding=json`). */
    readonly connectQueries: readonly string[];
    heartbeats: number;
  };
  /** Resolves once a client has identified and received READY and GUILD_CREATE. */
  ready(): Promise<void>;
  /** Hosts bytes at an attachment URL of the fake. */
  hostFile(filename: string, bytes: Uint8Array, contentType?: string): FakeAttachment;
  /** Dispatches INTERACTION_CREATE for a slash command; returns the interaction's id and token. */
  slashCommand(invocation: SlashCommandInvocation): { id: string; token: string };
  /** Dispatches MESSAGE_CREATE; returns the message's id. */
  message(invocation: MessageInvocation): string;
  /**
   * issue 16: dispatches INTERACTION_CREATE for a button (a message component, type 3) under one
   * of the bot's messages; returns the interaction's id and token.
   * @throws {Error} when that message has no button with this `custom_id`.
   */
  pressButton(invocation: ButtonPressInvocation): { id: string; token: string };
  /** issue 16: one of the bot's messages as it is now (edits applied), by id. */
  botMessage(id: string): Record<string, unknown> | undefined;
  /** issue 16: the id of an interaction's original response message, once it was edited in. */
  originalOf(token: string): string | undefined;
  /** issue 14: every edit of an existing bot message (not the first fill of `@original`). */
  readonly edits: readonly MessageEdit[];
  /**
   * issue 14: makes an interaction's token invalid, as Discord does after 15 minutes: its webhook
   * routes then answer 401 "Invalid Webhook Token" (code 50027).
   */
  expireInteraction(token: string): void;
  /** Resolves with the first request (already received or coming) that matches. */
  waitForRequest(
    match: (r: RecordedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const API_PREFIX = '/api/v10';
const DISCORD_EPOCH = 1420070400000n;

let snowflakeCounter = 0n;
/** A fresh snowflake: time since Discord's epoch, shifted as Discord does, plus a counter. */
function snowflake(): string {
  snowflakeCounter++;
  return String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) + snowflakeCounter);
}

/** A default student. */
export const STUDENT: FakeUser = { id: '300000000000000001', username: 'ann', global_name: 'Ann' };

function userObject(u: FakeUser, bot = false): Record<string, unknown> {
  return {
    id: u.id,
    username: u.username,
    global_name: u.global_name,
    discriminator: '0',
    avatar: null,
    ...(bot ? { bot: true } : {}),
  };
}

function memberObject(u: FakeUser): Record<string, unknown> {
  return {
    user: userObject(u),
    nick: null,
    roles: [],
    joined_at: new Date(0).toISOString(),
    deaf: false,
    mute: false,
    flags: 0,
    permissions: '2248473465835073',
  };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parses a JSON or multipart body as Discord does: multipart carries `payload_json` + `files[n]`. */
async function parseBody(
  contentType: string,
  raw: Buffer,
): Promise<{ body: unknown; files: RecordedFile[] }> {
  if (raw.length === 0) return { body: undefined, files: [] };
  if (contentType.startsWith('multipart/form-data')) {
    // Node's own (undici) multipart parser, via the fetch API's Request.
    const form = await new Request('http://fake.invalid/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: raw,
    }).formData();
    let body: unknown;
    const files: RecordedFile[] = [];
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') {
        if (field === 'payload_json') body = JSON.parse(value);
      } else {
        files.push({
          field,
          name: value.name,
          contentType: value.type,
          bytes: new Uint8Array(await value.arrayBuffer()),
        });
      }
    }
    return { body, files };
  }
  return { body: JSON.parse(raw.toString('utf8')), files: [] };
}

/**
 * Starts the fake on 127.0.0.1 (a free port).
 *
 * @example
 * const discord = await startFakeDiscord({ token: 'test-token', heartbeatIntervalMs: 500 });
 * const client = new Client({ intents: [], rest: { api: discord.apiRoot } });
 * await client.login('test-token');
 */
export async function startFakeDiscord(options: FakeDiscordOptions): Promise<FakeDiscord> {
  const applicationId = options.applicationId ?? '100000000000000001';
  const bot: FakeUser = { id: applicationId, username: 'cnn-classroom', global_name: null };
  const guildId = '200000000000000001';
  const channelId = '200000000000000002';
  const dmChannelId = '200000000000000003';
  const requests: RecordedRequest[] = [];
  const unknownRoutes: string[] = [];
  const files = new Map<string, { bytes: Uint8Array; contentType: string }>();
  const interactionTokens = new Set<string>();
  /** Interactions whose initial response was given (Discord accepts one). */
  const acknowledged = new Set<string>();
  /** The bot's messages by id; a slash command's original response keeps one id per token. */
  const botMessages = new Map<string, Record<string, unknown>>();
  const originals = new Map<string, string>();
  const expired = new Set<string>();
  const edits: MessageEdit[] = [];
  const events = new EventEmitter();
  const gateway = {
    identifies: [] as Record<string, unknown>[],
    connectQueries: [] as string[],
    heartbeats: 0,
  };
  let socket: WebSocket | undefined;
  let sequence = 0;
  let sessionId = '';
  let isReady = false;
  let base = '';

  function messageObject(
    channel: string,
    body: unknown,
    uploaded: readonly RecordedFile[],
  ): Record<string, unknown> {
    const b = (body ?? {}) as { content?: string; components?: unknown[] };
    const message = {
      id: snowflake(),
      channel_id: channel,
      author: userObject(bot, true),
      content: b.content ?? '',
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: uploaded.map((f) => {
        const id = snowflake();
        return {
          id,
          filename: f.name,
          size: f.bytes.length,
          url: `${base}/attachments/${id}/${f.name}`,
          proxy_url: `${base}/attachments/${id}/${f.name}`,
          content_type: f.contentType,
        };
      }),
      embeds: [],
      pinned: false,
      type: 0,
      flags: 0,
      application_id: applicationId,
      components: b.components ?? [],
    };
    botMessages.set(message.id, message);
    return message;
  }

  /** Applies an edit (content, components) to one of the bot's messages and records it. */
  function editMessage(
    old: Record<string, unknown>,
    body: unknown,
    via: MessageEdit['via'],
  ): Record<string, unknown> {
    const b = (body ?? {}) as { content?: string; components?: unknown[] };
    const id = String(old.id);
    const edited = {
      ...old,
      ...(b.content === undefined ? {} : { content: b.content }),
      ...(b.components === undefined ? {} : { components: b.components }),
      edited_timestamp: new Date().toISOString(),
    };
    botMessages.set(id, edited);
    if (b.content !== undefined)
      edits.push({ messageId: id, content: b.content, via, at: Date.now() });
    return edited;
  }

  /** The original response of an interaction: the same message id on every edit. */
  function original(token: string, body: unknown, uploaded: readonly RecordedFile[]): unknown {
    const made = messageObject(channelId, body, uploaded);
    const madeId = String(made.id);
    const id = originals.get(token);
    if (id === undefined) {
      originals.set(token, madeId);
      return made;
    }
    botMessages.delete(madeId);
    const kept = { ...made, id };
    botMessages.set(id, kept);
    return kept;
  }

  type Reply = { status: number; json?: unknown };
  type Incoming = Omit<RecordedRequest, 'status'>;
  type Handler = (m: RegExpExecArray, r: Incoming) => Reply;
  const botAuth = `Bot ${options.token}`;
  const routes: [string, RegExp, boolean, Handler][] = [
    [
      'GET',
      /^\/gateway\/bot$/,
      true,
      () => ({
        status: 200,
        json: {
          url: base.replace(/^http/, 'ws'),
          shards: 1,
          session_start_limit: {
            total: 1000,
            remaining: 999,
            reset_after: 14_400_000,
            max_concurrency: 1,
          },
        },
      }),
    ],
    [
      'POST',
      /^\/interactions\/(\d+)\/([^/]+)\/callback$/,
      false,
      (m) => {
        if (!interactionTokens.has(m[2] ?? '')) {
          return { status: 404, json: { message: 'Unknown interaction', code: 10062 } };
        }
        if (acknowledged.has(m[2] ?? '')) {
          return {
            status: 400,
            json: { message: 'Interaction has already been acknowledged.', code: 40060 },
          };
        }
        acknowledged.add(m[2] ?? '');
        return { status: 204 };
      },
    ],
    [
      'PATCH',
      /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(?:@|%40)original$/,
      false,
      (m, r) => webhook(m, () => original(m[2] ?? '', r.body, r.files)),
    ],
    [
      'PATCH',
      /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(\d+)$/,
      false,
      (m, r) =>
        webhook(m, () => {
          const old = botMessages.get(m[3] ?? '');
          if (!old) return { unknownMessage: true };
          return editMessage(old, r.body, 'webhook');
        }),
    ],
    [
      'DELETE',
      /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(?:@|%40)original$/,
      false,
      (m) => webhook(m, () => undefined),
    ],
    [
      'POST',
      /^\/webhooks\/(\d+)\/([^/]+)$/,
      false,
      (m, r) => webhook(m, () => messageObject(channelId, r.body, r.files)),
    ],
    [
      'POST',
      /^\/channels\/(\d+)\/messages$/,
      true,
      (m, r) => ({ status: 200, json: messageObject(m[1] ?? '', r.body, r.files) }),
    ],
    [
      // issue 14: Edit Message with the bot token, which outlives the interaction's token.
      'PATCH',
      /^\/channels\/(\d+)\/messages\/(\d+)$/,
      true,
      (m, r) => {
        const old = botMessages.get(m[2] ?? '');
        if (!old || old.channel_id !== m[1]) {
          return { status: 404, json: { message: 'Unknown Message', code: 10008 } };
        }
        const b = (r.body ?? {}) as { content?: unknown };
        if (typeof b.content === 'string' && b.content.length > 2000) {
          return {
            status: 400,
            json: { message: 'Invalid Form Body', code: 50035, errors: { content: {} } },
          };
        }
        return { status: 200, json: editMessage(old, r.body, 'channel') };
      },
    ],
    ['POST', /^\/channels\/(\d+)\/typing$/, true, () => ({ status: 204 })],
    ['PUT', /^\/applications\/(\d+)\/commands$/, true, (_m, r) => registered(r.body)],
    [
      'PUT',
      /^\/applications\/(\d+)\/guilds\/(\d+)\/commands$/,
      true,
      (m, r) => registered(r.body, m[2]),
    ],
  ];

  function webhook(m: RegExpExecArray, result: () => unknown): Reply {
    if (m[1] !== applicationId || !interactionTokens.has(m[2] ?? '')) {
      return { status: 404, json: { message: 'Unknown Webhook', code: 10015 } };
    }
    if (expired.has(m[2] ?? '')) {
      return { status: 401, json: { message: 'Invalid Webhook Token', code: 50027 } };
    }
    const json = result();
    if (json && typeof json === 'object' && 'unknownMessage' in json) {
      return { status: 404, json: { message: 'Unknown Message', code: 10008 } };
    }
    return json === undefined ? { status: 204 } : { status: 200, json };
  }

  function registered(body: unknown, guild?: string): Reply {
    const list = Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
    return {
      status: 200,
      json: list.map((c) => ({
        ...c,
        id: snowflake(),
        application_id: applicationId,
        version: snowflake(),
        ...(guild ? { guild_id: guild } : {}),
      })),
    };
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      const send = (status: number, json?: unknown): void => {
        if (json === undefined) {
          res.writeHead(status).end();
        } else {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        }
      };
      const download = /^\/attachments\/(\d+)\/[^/]+$/.exec(url.pathname);
      if (req.method === 'GET' && download) {
        const file = files.get(download[1] ?? '');
        if (!file) return send(404, { message: '404: Not Found', code: 0 });
        res
          .writeHead(200, {
            'content-type': file.contentType,
            'content-length': file.bytes.length,
          })
          .end(file.bytes);
        return;
      }
      const raw = await readBody(req);
      if (!url.pathname.startsWith(API_PREFIX)) {
        unknownRoutes.push(`${req.method} ${url.pathname}`);
        return send(404, { message: '404: Not Found', code: 0 });
      }
      const route = url.pathname.slice(API_PREFIX.length);
      const contentType = req.headers['content-type'] ?? '';
      const parsed = await parseBody(contentType, raw);
      const incoming: Incoming = {
        method: req.method ?? '',
        route,
        query: url.searchParams,
        authorization: req.headers.authorization,
        contentType,
        ...parsed,
      };
      let reply: Reply | undefined;
      for (const [method, pattern, needsAuth, handle] of routes) {
        const m = method === req.method ? pattern.exec(route) : null;
        if (!m) continue;
        reply =
          needsAuth && req.headers.authorization !== botAuth
            ? { status: 401, json: { message: '401: Unauthorized', code: 0 } }
            : handle(m, incoming);
        break;
      }
      if (!reply) {
        unknownRoutes.push(`${req.method} ${route}`);
        reply = { status: 404, json: { message: '404: Not Found', code: 0 } };
      }
      const recorded: RecordedRequest = { ...incoming, status: reply.status };
      requests.push(recorded);
      send(reply.status, reply.json);
      events.emit('request', recorded);
    })().catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });

  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    gateway.connectQueries.push(new URL(req.url ?? '/', base).search.slice(1));
    const send = (payload: Record<string, unknown>): void => {
      ws.send(JSON.stringify({ s: null, t: null, ...payload }));
    };
    send({ op: 10, d: { heartbeat_interval: options.heartbeatIntervalMs ?? 41_250 } });
    ws.on('message', (data) => {
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
      const { op, d } = JSON.parse(text) as { op: number; d: unknown };
      switch (op) {
        case 1:
          gateway.heartbeats++;
          send({ op: 11 });
          return;
        case 2: {
          const identify = d as Record<string, unknown>;
          gateway.identifies.push(identify);
          if (identify.token !== options.token) {
            ws.close(4004, 'Authentication failed.');
            return;
          }
          socket = ws;
          sessionId = snowflake();
          dispatchOn(ws, 'READY', {
            v: 10,
            user: { ...userObject(bot, true), verified: true, mfa_enabled: false, flags: 0 },
            guilds: [{ id: guildId, unavailable: true }],
            session_id: sessionId,
            resume_gateway_url: base.replace(/^http/, 'ws'),
            shard: [0, 1],
            application: { id: applicationId, flags: 0 },
          });
          dispatchOn(ws, 'GUILD_CREATE', guildObject());
          isReady = true;
          events.emit('ready');
          return;
        }
        case 6: {
          const resume = d as { session_id?: string };
          if (resume.session_id !== sessionId) {
            send({ op: 9, d: false });
            return;
          }
          socket = ws;
          dispatchOn(ws, 'RESUMED', {});
          return;
        }
        default:
          return;
      }
    });
  });

  function dispatchOn(ws: WebSocket, t: string, d: unknown): void {
    sequence++;
    ws.send(JSON.stringify({ op: 0, t, s: sequence, d }));
  }

  function dispatch(t: string, d: unknown): void {
    if (!socket) throw new Error('no client is connected to the fake gateway');
    dispatchOn(socket, t, d);
  }

  function guildObject(): Record<string, unknown> {
    return {
      id: guildId,
      name: 'CNN lab',
      icon: null,
      owner_id: STUDENT.id,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      nsfw_level: 0,
      premium_tier: 0,
      preferred_locale: 'en-US',
      system_channel_id: null,
      features: [],
      emojis: [],
      stickers: [],
      roles: [
        {
          id: guildId,
          name: '@everyone',
          color: 0,
          hoist: false,
          position: 0,
          permissions: '2248473465835073',
          managed: false,
          mentionable: false,
          flags: 0,
        },
      ],
      joined_at: new Date(0).toISOString(),
      large: false,
      unavailable: false,
      member_count: 2,
      members: [{ ...memberObject(bot), user: userObject(bot, true) }],
      channels: [
        {
          id: channelId,
          type: 0,
          guild_id: guildId,
          name: 'lab-1',
          position: 0,
          permission_overwrites: [],
          parent_id: null,
          nsfw: false,
          topic: null,
          last_message_id: null,
          rate_limit_per_user: 0,
        },
      ],
      threads: [],
      presences: [],
      voice_states: [],
      stage_instances: [],
      guild_scheduled_events: [],
    };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;

  const channelOf = (dm: boolean | undefined): Record<string, unknown> =>
    dm
      ? { id: dmChannelId, type: 1, recipients: [userObject(STUDENT)], last_message_id: null }
      : {
          id: channelId,
          type: 0,
          guild_id: guildId,
          name: 'lab-1',
          permissions: '2248473465835073',
        };

  return {
    apiRoot: `${base}/api`,
    gatewayUrl: base.replace(/^http/, 'ws'),
    applicationId,
    bot,
    guildId,
    channelId,
    dmChannelId,
    requests,
    unknownRoutes,
    gateway,
    ready: () =>
      isReady ? Promise.resolve() : new Promise((resolve) => events.once('ready', resolve)),
    hostFile(filename, bytes, contentType) {
      const id = snowflake();
      files.set(id, { bytes, contentType: contentType ?? 'application/octet-stream' });
      const url = `${base}/attachments/${id}/${encodeURIComponent(filename)}`;
      return {
        id,
        filename,
        size: bytes.length,
        url,
        proxy_url: url,
        ...(contentType ? { content_type: contentType } : {}),
      };
    },
    slashCommand(inv) {
      const id = snowflake();
      const token = `aW50ZXJhY3Rpb24${id}`;
      interactionTokens.add(token);
      const user = inv.user ?? STUDENT;
      const attachments = inv.attachments ?? {};
      const options = [
        ...Object.entries(inv.strings ?? {}).map(([name, value]) => ({ name, type: 3, value })),
        ...Object.entries(attachments).map(([name, a]) => ({ name, type: 11, value: a.id })),
      ];
      const resolved = Object.values(attachments).length
        ? { attachments: Object.fromEntries(Object.values(attachments).map((a) => [a.id, a])) }
        : undefined;
      dispatch('INTERACTION_CREATE', {
        id,
        application_id: applicationId,
        type: 2,
        token,
        version: 1,
        data: {
          id: snowflake(),
          name: inv.name,
          type: 1,
          ...(options.length ? { options } : {}),
          ...(resolved ? { resolved } : {}),
        },
        channel_id: inv.dm ? dmChannelId : channelId,
        channel: channelOf(inv.dm),
        ...(inv.dm
          ? { user: userObject(user), context: 1 }
          : { guild_id: guildId, guild_locale: 'en-US', member: memberObject(user), context: 0 }),
        locale: inv.locale ?? 'en-US',
        app_permissions: '2248473465835073',
        entitlements: [],
        authorizing_integration_owners: { '0': guildId },
      });
      return { id, token };
    },
    botMessage: (id) => botMessages.get(id),
    originalOf: (token) => originals.get(token),
    edits,
    expireInteraction(token) {
      expired.add(token);
    },
    pressButton(inv) {
      const message = botMessages.get(inv.messageId);
      const buttons = ((message?.components ?? []) as { components?: { custom_id?: string }[] }[])
        .flatMap((row) => row.components ?? [])
        .map((c) => c.custom_id);
      if (!message || !buttons.includes(inv.customId)) {
        throw new Error(`message ${inv.messageId} has no button "${inv.customId}"`);
      }
      const id = snowflake();
      const token = `aW50ZXJhY3Rpb24${id}`;
      interactionTokens.add(token);
      const user = inv.user ?? STUDENT;
      dispatch('INTERACTION_CREATE', {
        id,
        application_id: applicationId,
        type: 3,
        token,
        version: 1,
        message,
        data: { custom_id: inv.customId, component_type: 2 },
        channel_id: inv.dm ? dmChannelId : channelId,
        channel: channelOf(inv.dm),
        ...(inv.dm
          ? { user: userObject(user), context: 1 }
          : { guild_id: guildId, guild_locale: 'en-US', member: memberObject(user), context: 0 }),
        locale: inv.locale ?? 'en-US',
        app_permissions: '2248473465835073',
        entitlements: [],
        authorizing_integration_owners: { '0': guildId },
      });
      return { id, token };
    },
    message(inv) {
      const id = snowflake();
      const user = inv.user ?? STUDENT;
      dispatch('MESSAGE_CREATE', {
        id,
        channel_id: inv.dm ? dmChannelId : channelId,
        channel_type: inv.dm ? 1 : 0,
        ...(inv.dm
          ? {}
          : { guild_id: guildId, member: { ...memberObject(user), user: undefined } }),
        author: userObject(user),
        content: inv.content,
        timestamp: new Date().toISOString(),
        edited_timestamp: null,
        tts: false,
        mention_everyone: false,
        mentions: (inv.mentions ?? []).map((u) => userObject(u, u.id === bot.id)),
        mention_roles: [],
        attachments: inv.attachments ?? [],
        embeds: [],
        pinned: false,
        type: 0,
        flags: 0,
      });
      return id;
    },
    waitForRequest(match, timeoutMs = 30_000) {
      const found = requests.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('request', listener);
          reject(new Error('timed out waiting for a request to the fake Discord'));
        }, timeoutMs);
        const listener = (r: RecordedRequest): void => {
          if (!match(r)) return;
          clearTimeout(timer);
          events.off('request', listener);
          resolve(r);
        };
        events.on('request', listener);
      });
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
