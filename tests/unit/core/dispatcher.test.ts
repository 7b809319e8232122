import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/ml/backend.ts';
import { fakeContext, imageOf, isPng, makeCore, readImg } from './helpers.ts';

const PDF = new TextEncoder().encode('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
let seven: Buffer;
const cores: ReturnType<typeof makeCore>[] = [];

function core(options: Parameters<typeof makeCore>[0] = {}): ReturnType<typeof makeCore> {
  const env = makeCore(options);
  cores.push(env);
  return env;
}

beforeAll(async () => {
  await initBackend();
  seven = await readImg('7.png');
});
afterAll(async () => {
  for (const env of cores) await env.registry.dispose();
});

describe('a bare photo', () => {
  it('is classified by the default model: chart PNG, caption, chat action and a full row', async () => {
    const { core: c, store } = core();
    const { ctx, out } = fakeContext({ image: imageOf(seven) });
    await c.handle(ctx);
    expect(out.texts).toEqual([]);
    expect(out.images).toHaveLength(1);
    expect(isPng(out.images[0]!.png)).toBe(true);
    expect(out.images[0]!.caption).toMatch(/^lenet-mnist: 7 /);
    expect(out.actions).toContain('upload_photo');
    const sha = createHash('sha256').update(seven).digest('hex');
    expect(store.submissions.rows).toEqual([
      expect.objectContaining({
        platform: 'web',
        userId: 'u1',
        chatId: 'u1',
        messageId: ctx.messageId,
        command: 'predict',
        imageSha256: sha,
        imagePath: `memory:${sha}`,
        imageBytes: seven.length,
        imageWidth: 400,
        imageHeight: 400,
        modelId: 'lenet-mnist',
        predictedClass: '7',
        errorCode: null,
      }),
    ]);
    const row = store.submissions.rows[0]!;
    expect(row.confidence).toBeGreaterThan(0.5);
    expect(row.topK?.[0]).toEqual(expect.objectContaining({ label: '7', classIndex: 7 }));
    expect(row.topK).toHaveLength(3);
    expect(row.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Buffer.compare(Buffer.from(store.images.images.get(sha)!), seven)).toBe(0);
  });

  it("uses the chat's own default model when it has one", async () => {
    const { core: c, store } = core();
    const { ctx, out } = fakeContext({ image: imageOf(seven), language: 'ru' });
    await store.chats.setDefaultModel('web', ctx.chat.id, 'cifar-net');
    await c.handle(ctx);
    // The list names whatever models/ holds, lenet-mnist among them.
    expect(out.texts[0]).toMatch(
      /^Модели «cifar-net» нет\. Есть: ([a-z0-9-]+, )*lenet-mnist(, [a-z0-9-]+)*\.$/,
    );
    expect(store.submissions.rows[0]).toEqual(
      expect.objectContaining({ modelId: 'cifar-net', errorCode: 'model.unknown' }),
    );
  });
});

describe('user errors', () => {
  it.each([
    ['en', 'This is a PDF document, not an image.'],
    ['ru', 'Это PDF-документ, а не картинка.'],
  ] as const)('answer a PDF in %s and record the row with its error code', async (lang, text) => {
    const { core: c, store } = core();
    const { ctx, out } = fakeContext({ text: '/predict', language: lang, image: imageOf(PDF) });
    await c.handle(ctx);
    expect(out.texts).toHaveLength(1);
    expect(out.texts[0]).toContain(text);
    expect(out.images).toEqual([]);
    expect(store.submissions.rows).toEqual([
      expect.objectContaining({
        command: 'predict',
        errorCode: 'image.pdf',
        imageBytes: PDF.length,
        imageSha256: createHash('sha256').update(PDF).digest('hex'),
        imageWidth: null,
        predictedClass: null,
        modelId: 'lenet-mnist',
      }),
    ]);
  });

  it('answer an empty file', async () => {
    const { core: c, store } = core();
    const { ctx, out } = fakeContext({ image: imageOf(new Uint8Array(0)) });
    await c.handle(ctx);
    expect(out.texts).toEqual(['The file is empty. Please send a photo of a digit.']);
    expect(store.submissions.rows[0]?.errorCode).toBe('image.empty');
  });

  it('refuse an oversized file from its declared size, without downloading it', async () => {
    const { core: c, store } = core();
    const image = imageOf(seven, 50_000_000);
    const { ctx, out } = fakeContext({ image, language: 'ru' });
    await c.handle(ctx);
    expect(image.fetches).toBe(0);
    expect(out.texts).toEqual([
      'Файл слишком большой: можно не больше 2 МБ. Пришлите фото поменьше.',
    ]);
    expect(store.submissions.rows[0]).toEqual(
      expect.objectContaining({
        errorCode: 'image.too_large_bytes',
        imageBytes: 50_000_000,
        imageSha256: null,
      }),
    );
  });

  it('answer /predict without an image', async () => {
    const { core: c, store } = core();
    const { ctx, out } = fakeContext({ text: '/predict' });
    await c.handle(ctx);
    expect(out.texts[0]).toContain('Attach a photo to the command');
    expect(store.submissions.rows[0]?.errorCode).toBe('image.missing');
  });

  it('answer /predict with an unknown model without downloading the image', async () => {
    const { core: c, store } = core();
    const image = imageOf(seven);
    const { ctx, out } = fakeContext({ text: '/predict mobilenet-imagenet', image });
    await c.handle(ctx);
    expect(out.texts[0]).toMatch(
      /^There is no model “mobilenet-imagenet”\. Available: ([a-z0-9-]+, )*lenet-mnist(, [a-z0-9-]+)*\.$/,
    );
    expect(image.fetches).toBe(0);
    expect(store.submissions.rows[0]?.errorCode).toBe('model.unknown');
  });
});

describe('unexpected errors', () => {
  function capturingLogger(): { logger: pino.Logger; lines: string[] } {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    return { logger: pino({ level: 'info' }, stream), lines };
  }

  it.each([
    ['en', 'Sorry, something went wrong on my side.'],
    ['ru', 'Извините, у меня что-то сломалось.'],
  ] as const)(
    'get an apology in %s, a log line and a row; handle() resolves',
    async (lang, text) => {
      const { logger, lines } = capturingLogger();
      const { core: c, store } = core({
        overrides: {
          logger,
          classifier: { classify: () => Promise.reject(new Error('tensor exploded')) },
        },
      });
      const { ctx, out } = fakeContext({ image: imageOf(seven), language: lang });
      await expect(c.handle(ctx)).resolves.toBeUndefined();
      expect(out.texts).toHaveLength(1);
      expect(out.texts[0]).toContain(text);
      expect(store.submissions.rows[0]).toEqual(
        expect.objectContaining({ errorCode: 'internal', imageBytes: seven.length }),
      );
      expect(lines.join('')).toContain('tensor exploded');
      expect(lines.join('')).toContain('update failed');
    },
  );

  it('in the adapter (a failing reply) or the database never escape handle()', async () => {
    const { core: c, store } = core({
      overrides: {
        users: {
          upsert: () => Promise.reject(new Error('database is locked')),
          setLanguage: () => Promise.resolve(),
          find: () => Promise.resolve(undefined),
          setRole: () => Promise.reject(new Error('database is locked')),
        },
      },
    });
    const { ctx, out } = fakeContext({ text: '/help', language: 'ru' });
    await expect(c.handle(ctx)).resolves.toBeUndefined();
    expect(out.texts[0]).toContain('Извините');
    expect(store.submissions.rows[0]?.errorCode).toBe('internal');

    const { core: c2 } = core();
    const failing = fakeContext({ image: imageOf(seven) }).ctx;
    const broken = {
      ...failing,
      replyImage: () => Promise.reject(new Error('network down')),
      reply: () => Promise.reject(new Error('network down')),
    };
    await expect(c2.handle(broken)).resolves.toBeUndefined();
  });

  it('in one update do not affect the next', async () => {
    let calls = 0;
    const env = core();
    const real = env.services.classifier;
    const { core: c } = core({
      overrides: {
        classifier: {
          classify: (m, b) =>
            ++calls === 1 ? Promise.reject(new Error('once')) : real.classify(m, b),
        },
      },
    });
    const a = fakeContext({ image: imageOf(seven) });
    const b = fakeContext({ image: imageOf(seven) });
    await c.handle(a.ctx);
    await c.handle(b.ctx);
    expect(a.out.texts[0]).toContain('Sorry');
    expect(b.out.images[0]?.caption).toMatch(/: 7 /);
  });
});

describe('rate limiting', () => {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it.each([
    ['en', /^You're sending messages too fast\. I'll answer your last message in \d+ seconds?\.$/],
    [
      'ru',
      /^Вы пишете слишком часто\. Я отвечу на ваше последнее сообщение через \d+ секунд[уы]?\.$/,
    ],
  ] as const)(
    'sends one notice per window in %s, then answers the last message when the window ends',
    async (lang, text) => {
      const { core: c, store } = core({ rateLimit: { points: 2, durationSeconds: 1 } });
      const outs: string[][] = [];
      for (const command of ['/start', '/start', '/help', '/models', '/start']) {
        const { ctx, out } = fakeContext({ text: command, language: lang, userId: 'flood' });
        await c.handle(ctx);
        outs.push(out.texts);
      }
      expect(outs[0]).toHaveLength(1);
      expect(outs[1]).toHaveLength(1);
      expect(outs[2]).toEqual([expect.stringMatching(text)]);
      expect(outs[3]).toEqual([]);
      expect(outs[4]).toEqual([]);
      // Another user is not affected.
      const other = fakeContext({ text: '/start', language: lang, userId: 'calm' });
      await c.handle(other.ctx);
      expect(other.out.texts[0]).not.toMatch(text);
      await expect.poll(() => outs[4]!.length, { timeout: 15_000 }).toBe(1);
      // The last one (/start) is answered; /help and /models were replaced by it.
      expect(outs[4]).toEqual([outs[0]![0]]);
      expect(outs[2]).toHaveLength(1);
      expect(outs[3]).toEqual([]);
      expect(c.metrics).toMatchObject({ limited: 3, superseded: 2, answeredLate: 1 });
      expect(store.submissions.rows).toEqual([]);
    },
  );

  it('limits plain text and unknown commands before answering them', async () => {
    const { core: c } = core({ rateLimit: { points: 1, durationSeconds: 60 } });
    const a = fakeContext({ userId: 'chatty' });
    await c.handle(a.ctx);
    expect(a.out.texts[0]).toContain('Send me a photo');
    const b = fakeContext({ text: '/frobnicate', userId: 'chatty' });
    await c.handle(b.ctx);
    expect(b.out.texts).toEqual([expect.stringContaining('too fast')]);
    expect(c.metrics.limited).toBe(1);
  });

  it('writes no row for a dropped photo, and exactly one for the photo answered late', async () => {
    const { core: c, store } = core({ rateLimit: { points: 1, durationSeconds: 1 } });
    const seven = await readImg('7.png');
    const outs: ReturnType<typeof fakeContext>['out'][] = [];
    for (let i = 0; i < 3; i++) {
      const { ctx, out } = fakeContext({ userId: 'burst', image: imageOf(seven) });
      await c.handle(ctx);
      outs.push(out);
    }
    expect(store.submissions.rows).toHaveLength(1);
    await expect.poll(() => outs[2]!.images.length, { timeout: 15_000 }).toBe(1);
    expect(outs.map((o) => o.images.length)).toEqual([1, 0, 1]);
    expect(outs[1]!.texts).toEqual([expect.stringContaining('too fast')]);
    expect(store.submissions.rows).toHaveLength(2);
    expect(store.submissions.rows.every((r) => r.errorCode === null)).toBe(true);
  });

  it('lets an adapter that answers in one response wait for the late answer', async () => {
    const { core: c } = core({ rateLimit: { points: 1, durationSeconds: 1 } });
    await c.handle(fakeContext({ text: '/start', userId: 'web-user' }).ctx);
    const { ctx, out } = fakeContext({ text: '/start', userId: 'web-user' });
    await c.handle({ ...ctx, waitsForAnswer: true });
    expect(out.texts).toHaveLength(2);
    expect(out.texts[0]).toContain('too fast');
    expect(out.texts[1]).toMatch(/^Hi, Ann!/);
  });

  it('answers "still working" to a user with too many updates in flight, without a row', async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { services } = core();
    const slow = {
      classify: async (id: string, bytes: Uint8Array) => {
        await gate;
        return services.classifier.classify(id, bytes);
      },
    };
    const { core: c2, store: store2 } = core({
      maxInFlightPerUser: 1,
      overrides: { classifier: slow },
    });
    const seven = await readImg('7.png');
    const first = fakeContext({ userId: 'eager', image: imageOf(seven) });
    const firstDone = c2.handle(first.ctx);
    await sleep(50);
    const second = fakeContext({ userId: 'eager', image: imageOf(seven) });
    await c2.handle(second.ctx);
    expect(second.out.texts).toEqual([expect.stringContaining('still working')]);
    release();
    await firstDone;
    expect(first.out.images).toHaveLength(1);
    expect(store2.submissions.rows).toHaveLength(1);
    expect(c2.metrics.busyUser).toBe(1);
  });
});

describe('routing', () => {
  it('answers an unknown command and plain text in a private chat', async () => {
    const { core: c, store } = core();
    const a = fakeContext({ text: '/frobnicate' });
    await c.handle(a.ctx);
    expect(a.out.texts).toEqual(["I don't know the command /frobnicate. See /help."]);
    const b = fakeContext({ language: 'ru' });
    await c.handle(b.ctx);
    expect(b.out.texts).toEqual(['Пришлите мне фото рукописной цифры или загляните в /help.']);
    expect(store.submissions.rows).toEqual([]);
  });

  it('ignores unknown commands (maybe for another bot) and plain text in a group', async () => {
    const { core: c } = core();
    for (const fields of [{ text: '/frobnicate' }, {}]) {
      const { ctx, out } = fakeContext({
        ...fields,
        chat: { id: 'g1', type: 'group', title: 'Lab 1' },
      });
      await c.handle(ctx);
      expect(out.texts).toEqual([]);
    }
  });
});

describe('concurrency', () => {
  it('answers 30 photos from 10 users sent at once, each as if it were alone, with a row each', async () => {
    const { core: c, store, services } = core({ rateLimit: { points: 12, durationSeconds: 60 } });
    const digits = [...Array(10).keys()];
    const files = await Promise.all(digits.map((d) => readImg(`${d}.png`)));
    // The answers one at a time; the point here is that concurrency changes none of them.
    const alone: string[] = [];
    for (const f of files)
      alone.push((await services.classifier.classify('lenet-mnist', f)).result.label);
    const sends = [...Array(30).keys()].map((i) => {
      const d = i % 10;
      const { ctx, out } = fakeContext({
        userId: `student-${d}`,
        chat: { id: 'lab', type: 'group' },
        image: imageOf(files[d]!),
      });
      return { d, out, done: c.handle(ctx) };
    });
    await Promise.all(sends.map((s) => s.done));
    for (const { d, out } of sends) {
      expect(out.images, `digit ${d}`).toHaveLength(1);
      expect(out.images[0]!.caption).toMatch(new RegExp(`^lenet-mnist: ${alone[d]} `));
    }
    expect(alone[7]).toBe('7');
    expect(store.submissions.rows).toHaveLength(30);
    expect(store.submissions.rows.every((r) => r.errorCode === null)).toBe(true);
  });
});

describe('close()', () => {
  it('waits for updates in flight and ignores new ones', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const env = core();
    const real = env.services.classifier;
    const { core: c } = core({
      overrides: { classifier: { classify: async (m, b) => (await gate, real.classify(m, b)) } },
    });
    const first = fakeContext({ image: imageOf(seven) });
    const handled = c.handle(first.ctx);
    await new Promise((r) => setTimeout(r, 20));
    expect(c.inFlight).toBe(1);
    const closed = c.close(5_000);
    const late = fakeContext({ text: '/help' });
    await c.handle(late.ctx);
    expect(late.out.texts).toEqual([]);
    release();
    await expect(closed).resolves.toBe(true);
    await handled;
    expect(first.out.images).toHaveLength(1);
  });

  it('gives up after the timeout', async () => {
    const { core: c } = core({
      overrides: { classifier: { classify: () => new Promise(() => undefined) } },
    });
    void c.handle(fakeContext({ image: imageOf(seven) }).ctx);
    await new Promise((r) => setTimeout(r, 20));
    await expect(c.close(50)).resolves.toBe(false);
  });
});
