/**
 * The Telegram adapter end to end: the real core over the shipped models, real grammY (with the
 * runner and auto-retry), and a fake Bot API server on 127.0.0.1 speaking the real protocol.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Message } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADAPTERS } from '../../src/adapters/index.ts';
import {
  WEBHOOK_MAX_BODY_BYTES,
  startTelegram,
  type RunningTelegram,
} from '../../src/adapters/telegram/start.ts';
import { loadConfig } from '../../src/config.ts';
import {
  buildCoreServices,
  createCore,
  createMemoryStore,
  type Core,
  type Persistence,
} from '../../src/core/index.ts';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import en from '../../src/core/locales/en.json' with { type: 'json' };
import ru from '../../src/core/locales/ru.json' with { type: 'json' };
import { initBackend } from '../../src/ml/backend.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import {
  startFakeTelegram,
  type FakeTelegram,
  type SentMessage,
} from '../fakes/telegram-server.ts';
import { isPng, MODELS_DIR, photoFor, QUICK_LATENCY, readImg } from '../unit/core/helpers.ts';

/** The Bot API counts its 20 MB download limit in binary megabytes (`20 << 20`). */
const MiB = 1024 * 1024;
/** A 1x1 GIF. */
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
/** The start of an MP4 file (`ftyp` box, brand isom). */
const MP4 = Buffer.concat([
  Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex'),
  Buffer.alloc(64),
]);
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n');

let tg: FakeTelegram;
let bot: RunningTelegram;
let core: Core;
let store: ReturnType<typeof createMemoryStore>;
/** The real database (SQLite in a temp folder) every submission is logged to. */
let db: Database;
let dbDir: string | undefined;

/**
 * Logs every submission to the real database and, for easy assertions by message id, to the
 * in-memory store as well; users, chats and images live in the database.
 */
function teePersistence(
  real: Persistence,
  memory: ReturnType<typeof createMemoryStore>,
): Persistence {
  return {
    ...real,
    submissions: {
      async record(s) {
        const stored = await real.submissions.record(s);
        await memory.submissions.record(s);
        return stored;
      },
      listRecent: (user, limit) => real.submissions.listRecent(user, limit),
    },
  };
}
let registry: ModelRegistry;
const logLines: string[] = [];

const user = (id: number, language_code = 'en', first_name = `Student ${id}`) => ({
  id,
  is_bot: false as const,
  first_name,
  language_code,
});
const ann = user(101, 'en', 'Ann');
const boris = user(102, 'ru', 'Борис');
const group = { id: -1001234, type: 'supergroup' as const, title: 'CNN lab, group 3' };

/** The single answer to a message, once it arrives. */
async function answerTo(messageId: number): Promise<SentMessage> {
  await tg.waitFor(() => tg.repliesTo(messageId).length > 0);
  const replies = tg.repliesTo(messageId);
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

type Row = (typeof store.submissions.rows)[number];

/** The submission row of a message, once the core has recorded it (just after replying). */
async function rowOf(msg: Message): Promise<Row> {
  return vi.waitFor(
    () => {
      const row = store.submissions.rows.find(
        (r) => r.messageId === String(msg.message_id) && r.chatId === String(msg.chat.id),
      );
      if (!row) throw new Error(`no row yet for message ${msg.message_id}`);
      return row;
    },
    { timeout: 10_000, interval: 20 },
  );
}

function telegramConfig(extra: Record<string, string> = {}) {
  return loadConfig({
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: `${tg.apiRoot}/`,
    ...extra,
  });
}

beforeAll(async () => {
  await initBackend();
  tg = await startFakeTelegram();
  store = createMemoryStore();
  dbDir = await mkdtemp(path.join(os.tmpdir(), 'telegram-db-'));
  db = await openDatabase({ DATA_DIR: dbDir });
  registry = new ModelRegistry(MODELS_DIR);
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );
  core = createCore(
    buildCoreServices({
      config: {
        MAX_IMAGE_BYTES: 20_000_000,
        MAX_IMAGE_PIXELS: 40_000_000,
        DEFAULT_MODEL: 'lenet-mnist',
      },
      registry,
      persistence: teePersistence(createPrismaPersistence(db), store),
      logger,
      latency: QUICK_LATENCY,
    }),
    { rateLimit: false },
  );
  bot = await startTelegram(telegramConfig(), core, logger);
});

afterAll(async () => {
  await bot?.stop();
  await tg?.close();
  await registry?.dispose();
  await db?.close();
  if (dbDir) await rm(dbDir, { recursive: true, force: true });
});

describe('the Telegram adapter against a fake Bot API server', () => {
  it('is the adapter npm start runs when TELEGRAM_BOT_TOKEN is set', () => {
    const entry = ADAPTERS.find((a) => a.name === 'telegram');
    expect(entry?.enabled(loadConfig({ TELEGRAM_BOT_TOKEN: '1:x' }))).toBe(true);
    expect(entry?.enabled(loadConfig({}))).toBe(false);
    expect(
      ADAPTERS.find((a) => a.name === 'web')?.enabled(loadConfig({ TELEGRAM_BOT_TOKEN: '1:x' })),
    ).toBe(false);
  });

  it('starts with getMe, clears any webhook, and sets the command menu in English and Russian', () => {
    expect(bot.username).toBe('cnn_test_bot');
    const methods = tg.calls.map((c) => c.method);
    expect(methods).toContain('getMe');
    expect(methods).toContain('deleteWebhook');
    const byLanguage = new Map(tg.menus.map((m) => [m.languageCode, m.commands]));
    expect(byLanguage.get(undefined)).toEqual(
      core.commands.map((c) => ({ command: c.name, description: c.description.en })),
    );
    expect(byLanguage.get('ru')).toEqual(
      core.commands.map((c) => ({ command: c.name, description: c.description.ru })),
    );
    expect(byLanguage.get('uk')).toEqual(byLanguage.get('ru'));
  });

  it('answers a compressed photo with the digit and a PNG chart, from its largest size', async () => {
    const msg = tg.send({ from: ann, photo: await readImg('7.png') });
    const answer = await answerTo(msg.message_id);
    expect(answer.method).toBe('sendPhoto');
    expect(answer.chatId).toBe(ann.id);
    expect(answer.caption).toMatch(/^lenet-mnist: 7 /);
    expect(isPng(answer.photo!)).toBe(true);
    // The thumbnail is listed first; only the largest size was downloaded.
    const photoFile = msg.photo!.at(-1)!.file_id;
    const getFiles = tg.calls.filter((c) => c.method === 'getFile').map((c) => c.payload.file_id);
    expect(getFiles).toContain(photoFile);
    expect(getFiles).not.toContain(msg.photo![0]!.file_id);
    // Fired without waiting, before the model runs.
    await vi.waitFor(() =>
      expect(tg.calls).toContainEqual(
        expect.objectContaining({
          method: 'sendChatAction',
          payload: expect.objectContaining({ action: 'upload_photo' }) as unknown,
        }),
      ),
    );
    expect(await rowOf(msg)).toEqual(
      expect.objectContaining({
        platform: 'telegram',
        userId: String(ann.id),
        chatId: String(ann.id),
        command: 'predict',
        predictedClass: '7',
        errorCode: null,
      }),
    );
  });

  it('answers an image sent as a file (document), judged by its bytes', async () => {
    const msg = tg.send({
      from: ann,
      document: {
        bytes: await readImg('3.png'),
        fileName: 'digit',
        mimeType: 'application/octet-stream',
      },
    });
    const answer = await answerTo(msg.message_id);
    expect(answer.caption).toMatch(/^lenet-mnist: 3 /);
    expect(isPng(answer.photo!)).toBe(true);
  });

  it('takes /predict with the bot name and a model from a photo caption, in Russian for a ru client', async () => {
    const msg = tg.send({
      from: boris,
      photo: await readImg('4.png'),
      caption: '/predict@cnn_test_bot lenet-mnist',
    });
    const answer = await answerTo(msg.message_id);
    expect(answer.caption).toMatch(/^lenet-mnist: 4 /);
    expect(answer.caption).toContain('Топ-3:');
  });

  it('classifies the replied-to photo for a /predict sent as a reply in a group', async () => {
    // With privacy mode on, the bot never saw the photo itself: only the reply carries it.
    const photo = tg.message({ from: boris, chat: group, photo: await readImg('2.png') });
    const msg = tg.send({ from: ann, chat: group, text: '/predict', replyTo: photo });
    const answer = await answerTo(msg.message_id);
    expect(answer.chatId).toBe(group.id);
    expect(answer.caption).toMatch(/^lenet-mnist: 2 /);
    expect(await rowOf(msg)).toEqual(
      expect.objectContaining({ userId: String(ann.id), predictedClass: '2' }),
    );
  });

  it('answers /gradcam and /saliency on a replied-to photo with the overlay and its explanation', async () => {
    const photo = tg.message({ from: boris, chat: group, photo: await readImg('7.png') });
    const cam = tg.send({ from: ann, chat: group, text: '/gradcam', replyTo: photo });
    await tg.waitFor(() => tg.repliesTo(cam.message_id).length > 0, 30_000);
    const [overlay, ...rest] = tg.repliesTo(cam.message_id);
    expect(overlay!.method).toBe('sendPhoto');
    expect(isPng(overlay!.photo!)).toBe(true);
    const text = [overlay!.caption, ...rest.map((r) => r.text)].join('\n');
    expect(text).toMatch(/^lenet-mnist: 7 .*Grad-CAM/);
    expect(text).toContain('Where the heat is');
    const sal = tg.send({ from: ann, chat: group, text: '/saliency', replyTo: photo });
    await tg.waitFor(() => tg.repliesTo(sal.message_id).length > 0, 30_000);
    const salAnswer = tg.repliesTo(sal.message_id)[0]!;
    expect(isPng(salAnswer.photo!)).toBe(true);
    expect(salAnswer.caption).toContain('saliency map');
  });

  it('ignores chatter under a photo and commands addressed to another bot', async () => {
    const photo = tg.message({ from: boris, chat: group, photo: await readImg('2.png') });
    const chatter = tg.send({ from: ann, chat: group, text: 'nice one!', replyTo: photo });
    const other = tg.send({ from: ann, chat: group, text: '/predict@other_bot', replyTo: photo });
    // Ann's updates in this chat are handled in order: once this one is answered, the two
    // before it have been handled too.
    const last = tg.send({ from: ann, chat: group, text: '/predict', replyTo: photo });
    await answerTo(last.message_id);
    expect(tg.repliesTo(chatter.message_id)).toEqual([]);
    expect(tg.repliesTo(other.message_id)).toEqual([]);
  });

  it('answers a forum-topic message in the same topic', async () => {
    const msg = tg.send({ from: ann, chat: group, threadId: 77, text: '/models' });
    const answer = await answerTo(msg.message_id);
    expect(answer.threadId).toBe(77);
    expect(answer.method).toBe('sendPhoto');
    expect(answer.caption).toContain('lenet-mnist');
  });

  it('answers /predict <model> for every shipped model with one of its class names', async () => {
    const metas = await registry.list();
    expect(metas.map((m) => m.id)).toContain('lenet-mnist');
    for (const meta of metas) {
      const msg = tg.send({
        from: ann,
        photo: await photoFor(meta),
        caption: `/predict ${meta.id}`,
      });
      const answer = await answerTo(msg.message_id);
      expect(answer.method).toBe('sendPhoto');
      expect(isPng(answer.photo!)).toBe(true);
      const label = new RegExp(`^${meta.id}: (.+?) \\(`).exec(answer.caption ?? '')?.[1];
      expect(meta.classNames, `${meta.id}: ${answer.caption}`).toContain(label);
    }
  }, 120_000);

  it('answers /arch lenet-mnist and /compare with a table image and a summary', async () => {
    const arch = tg.send({ from: boris, text: '/arch lenet-mnist' });
    const archAnswer = await answerTo(arch.message_id);
    expect(archAnswer.method).toBe('sendPhoto');
    expect(isPng(archAnswer.photo!)).toBe(true);
    expect(archAnswer.caption).toMatch(/^lenet-mnist \(lenet, mnist\): параметров 44\s426,/);

    const compare = tg.send({ from: ann, chat: group, text: '/compare@cnn_test_bot' });
    const compareAnswer = await answerTo(compare.message_id);
    expect(compareAnswer.method).toBe('sendPhoto');
    expect(isPng(compareAnswer.photo!)).toBe(true);
    expect(compareAnswer.caption).toContain('/arch <model>');
  });

  it('rejects a GIF, a PDF and an empty file with localized messages', async () => {
    // The core reads a GIF's first frame: this blank one has no digit.
    const gif = tg.send({
      from: boris,
      document: { bytes: GIF, fileName: 'digit.gif', mimeType: 'image/gif' },
    });
    // Telegram clients send a GIF as an "animation": an MP4 file.
    const animation = tg.send({
      from: boris,
      document: { bytes: MP4, fileName: 'digit.gif.mp4', mimeType: 'video/mp4' },
    });
    const pdf = tg.send({
      from: ann,
      document: { bytes: PDF, fileName: 'lab.pdf', mimeType: 'application/pdf' },
    });
    const empty = tg.send({
      from: user(103, 'en-GB'),
      document: { bytes: new Uint8Array(0), fileName: 'empty.png', mimeType: 'image/png' },
    });
    expect((await answerTo(gif.message_id)).text).toBe(ru['error.image.no_ink']);
    expect((await answerTo(animation.message_id)).text).toBe(ru['error.image.unsupported_format']);
    expect((await answerTo(pdf.message_id)).text).toBe(en['error.image.pdf']);
    expect((await answerTo(empty.message_id)).text).toBe(en['error.image.empty']);
    expect((await rowOf(gif)).errorCode).toBe('image.no_ink');
    expect((await rowOf(animation)).errorCode).toBe('image.unsupported_format');
    expect((await rowOf(pdf)).errorCode).toBe('image.pdf');
    expect((await rowOf(empty)).errorCode).toBe('image.empty');
  });

  it('refuses a file announced over 20 MB without downloading it', async () => {
    const msg = tg.send({
      from: ann,
      document: {
        bytes: await readImg('7.png'),
        fileName: 'huge.png',
        mimeType: 'image/png',
        declaredSize: 25 * MiB,
      },
    });
    const answer = await answerTo(msg.message_id);
    expect(answer.text).toBe(en['error.image.too_large_bytes'].replace('{{maxSize}}', '20 MB'));
    const fileId = msg.document!.file_id;
    expect(tg.calls.some((c) => c.method === 'getFile' && c.payload.file_id === fileId)).toBe(
      false,
    );
    expect(tg.downloads).not.toContain(tg.file(fileId)?.file_path);
    expect(await rowOf(msg)).toEqual(
      expect.objectContaining({ errorCode: 'image.too_large_bytes', imageBytes: 25 * MiB }),
    );
  });

  it('refuses a file only getFile reveals as over 20 MB, before downloading it', async () => {
    const msg = tg.send({
      from: ann,
      document: {
        bytes: await readImg('7.png'),
        fileName: 'huge.png',
        mimeType: 'image/png',
        declaredSize: 21 * MiB,
        hideSize: true,
      },
    });
    const answer = await answerTo(msg.message_id);
    expect(answer.text).toBe(en['error.image.too_large_bytes'].replace('{{maxSize}}', '20 MB'));
    const file = tg.calls.find(
      (c) => c.method === 'getFile' && c.payload.file_id === msg.document!.file_id,
    );
    expect(file).toBeDefined();
    expect(tg.downloads).not.toContain(tg.file(msg.document!.file_id)?.file_path);
  });

  it('answers all of 30 photos from 10 users sent at once, through injected 429s', async () => {
    const digits = await Promise.all(Array.from({ length: 10 }, (_, d) => readImg(`${d}.png`)));
    const rowsBefore = await db.submissions.count({ outcome: 'success' });
    tg.failNext('sendPhoto', 4);
    tg.failNext('getFile', 3);
    tg.failNext('getUpdates', 1);
    const sentMessages = Array.from({ length: 30 }, (_, i) => {
      const digit = i % 10;
      return {
        digit,
        msg: tg.send({ from: user(200 + (i % 10), i % 2 ? 'ru' : 'en'), photo: digits[digit]! }),
      };
    });
    await tg.waitFor(
      () => sentMessages.every(({ msg }) => tg.repliesTo(msg.message_id).length > 0),
      50_000,
    );
    for (const { msg } of sentMessages) {
      const replies = tg.repliesTo(msg.message_id);
      expect(replies).toHaveLength(1);
      expect(replies[0]!.method).toBe('sendPhoto');
      expect(isPng(replies[0]!.photo!)).toBe(true);
    }
    // The 429s were answered and retried.
    expect(tg.calls.filter((c) => c.status === 429).length).toBe(8);
    expect(logLines.some((l) => l.includes('getUpdates failed') && l.includes('429'))).toBe(true);
    const rows = await Promise.all(sentMessages.map(({ msg }) => rowOf(msg)));
    expect(rows).toHaveLength(30);
    expect(rows.every((r) => r.platform === 'telegram' && r.errorCode === null)).toBe(true);
    expect(new Set(rows.map((r) => r.userId)).size).toBe(10);
    // The shipped model reads img/ correctly (the same digits the CLI test checks).
    expect(rows.map((r) => r.predictedClass)).toEqual(
      sentMessages.map(({ digit }) => String(digit)),
    );
    // ...and all 30 are rows in the real database.
    expect(await db.submissions.count({ outcome: 'success' })).toBe(rowsBefore + 30);
  }, 60_000);

  it('keeps answering others when one update fails with an exception', async () => {
    const broken = tg.message({ from: user(301), photo: await readImg('5.png') });
    tg.failDownload(broken.photo!.at(-1)!.file_id);
    tg.deliver(broken);
    const fine = tg.send({ from: user(302), photo: await readImg('6.png') });
    expect((await answerTo(broken.message_id)).text).toBe(en['error.internal']);
    expect((await answerTo(fine.message_id)).caption).toMatch(/^lenet-mnist: 6 /);
    expect((await rowOf(broken)).errorCode).toBe('internal');
    // And the bot still takes new updates afterwards.
    const after = tg.send({ from: user(301), text: '/help' });
    expect((await answerTo(after.message_id)).text).toContain('/predict');
  });

  it('fails to start, with a clear error, on a rejected token or an unreachable server', async () => {
    const silent = pino({ level: 'silent' });
    await expect(
      startTelegram(telegramConfig({ TELEGRAM_BOT_TOKEN: '999:wrong-token' }), core, silent),
    ).rejects.toThrow(/rejected TELEGRAM_BOT_TOKEN \(401/);
    await expect(
      startTelegram(telegramConfig({ TELEGRAM_API_ROOT: 'http://127.0.0.1:9' }), core, silent),
    ).rejects.toThrow(/cannot reach the Telegram Bot API at http:\/\/127\.0\.0\.1:9/);
  });

  it('never writes the bot token to the logs', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const secret = tg.token.split(':')[1]!;
    expect(logLines.join('\n')).not.toContain(secret);
  });
});

describe('the Telegram adapter in webhook mode', () => {
  let hookTg: FakeTelegram;
  let hooked: RunningTelegram;
  const SECRET = 'test-webhook-secret_1';
  const URL_PATH = '/telegram/hook';

  beforeAll(async () => {
    hookTg = await startFakeTelegram({ token: '654321:WEBHOOK-token', username: 'cnn_hook_bot' });
    hooked = await startTelegram(
      loadConfig({
        TELEGRAM_BOT_TOKEN: hookTg.token,
        TELEGRAM_API_ROOT: hookTg.apiRoot,
        TELEGRAM_WEBHOOK_URL: `https://bot.example.test${URL_PATH}`,
        TELEGRAM_WEBHOOK_HOST: '127.0.0.1',
        TELEGRAM_WEBHOOK_PORT: '0',
        TELEGRAM_WEBHOOK_SECRET: SECRET,
      }),
      core,
      pino({ level: 'silent' }),
    );
  });
  afterAll(async () => {
    await hooked?.stop();
    await hookTg?.close();
  });

  const post = (update: unknown, secret?: string) =>
    fetch(`http://127.0.0.1:${hooked.webhookPort}${URL_PATH}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(secret ? { 'x-telegram-bot-api-secret-token': secret } : {}),
      },
      body: JSON.stringify(update),
    });

  it('registers the webhook with its secret, for messages and button presses only', () => {
    expect(hookTg.webhook).toEqual(
      expect.objectContaining({
        url: `https://bot.example.test${URL_PATH}`,
        secret_token: SECRET,
        allowed_updates: ['message', 'callback_query'],
      }),
    );
    expect(hookTg.calls.some((c) => c.method === 'getUpdates')).toBe(false);
  });

  it('listens on 127.0.0.1 unless told otherwise (issue 19)', () => {
    expect(loadConfig({}).TELEGRAM_WEBHOOK_HOST).toBe('127.0.0.1');
  });

  it('answers 413 to a body over the limit, counted while streaming, and handles nothing', async () => {
    const msg = hookTg.message({ from: ann, text: '/help' });
    const huge = { update_id: 3, message: { ...msg, text: 'x'.repeat(WEBHOOK_MAX_BODY_BYTES) } };
    const body = JSON.stringify(huge);
    // Chunked, without a content-length: the limit is counted on the stream.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(body);
        for (let at = 0; at < bytes.length; at += 65_536) {
          controller.enqueue(bytes.subarray(at, at + 65_536));
        }
        controller.close();
      },
    });
    const res = await fetch(`http://127.0.0.1:${hooked.webhookPort}${URL_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
      body: stream,
      duplex: 'half',
    }).catch(() => undefined);
    // The server answers 413 and closes; the client may see the answer or the closed socket.
    if (res) expect(res.status).toBe(413);
    const declared = await fetch(`http://127.0.0.1:${hooked.webhookPort}${URL_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
      body,
    }).catch(() => undefined);
    if (declared) expect(declared.status).toBe(413);
    expect(res ?? declared).toBeDefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(hookTg.repliesTo(msg.message_id)).toEqual([]);
  });

  it('refuses a request without the secret token', async () => {
    const msg = hookTg.message({ from: ann, text: '/help' });
    const res = await post({ update_id: 1, message: msg });
    expect(res.status).toBe(401);
    await res.arrayBuffer();
    expect(hookTg.repliesTo(msg.message_id)).toEqual([]);
  });

  it('answers a photo posted to the webhook', async () => {
    const msg = hookTg.message({ from: ann, photo: await readImg('8.png') });
    const res = await post({ update_id: 2, message: msg }, SECRET);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await hookTg.waitFor(() => hookTg.repliesTo(msg.message_id).length > 0);
    expect(hookTg.repliesTo(msg.message_id)[0]?.caption).toMatch(/^lenet-mnist: 8 /);
  });
});
