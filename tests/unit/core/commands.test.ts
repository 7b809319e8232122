import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  formatCompact,
  formatNumber,
  formatPercent,
  translator,
  type Language,
} from '../../../src/core/i18n.ts';
import en from '../../../src/core/locales/en.json' with { type: 'json' };
import { archNotes } from '../../../src/core/commands/arch.ts';
import { compareTable } from '../../../src/core/commands/compare.ts';
import { commands } from '../../../src/core/commands/index.ts';
import type { ModelMeta } from '../../../src/ml/model-meta.ts';
import { predictionCaption } from '../../../src/core/commands/predict.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { fakeContext, imageOf, isPng, makeCore, readImg } from './helpers.ts';

const clients: Record<Language, string> = { en: 'en-US', ru: 'ru-RU' };
let env: ReturnType<typeof makeCore>;

beforeAll(async () => {
  await initBackend();
  env = makeCore();
});
afterAll(async () => {
  await env.registry.dispose();
});

async function send(text: string | undefined, lang: Language, image?: Uint8Array) {
  const { ctx, out } = fakeContext({
    ...(text === undefined ? {} : { text }),
    language: clients[lang],
    ...(image ? { image: imageOf(image) } : {}),
  });
  await env.core.handle(ctx);
  return out;
}

describe('the command list', () => {
  it('has unique names valid on Telegram and Discord, each described in both languages', () => {
    const names = commands.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of commands) {
      expect(c.name).toMatch(/^[a-z0-9_]{1,32}$/);
      expect(c.description.en.length).toBeGreaterThan(3);
      expect(c.description.ru).toMatch(/[а-яё]/i);
      expect(c.description.en.length).toBeLessThanOrEqual(100); // Discord's limit
      expect(c.description.ru.length).toBeLessThanOrEqual(100);
      for (const o of c.options ?? []) expect(o.name).toMatch(/^[a-z0-9_-]{1,32}$/);
    }
  });
});

describe('/start', () => {
  it.each([
    ['en', 'Hi, Ann!'],
    ['ru', 'Привет, Ann!'],
  ] as const)('greets a %s user by name', async (lang, greeting) => {
    const out = await send('/start', lang);
    expect(out.texts).toHaveLength(1);
    expect(out.texts[0]).toContain(greeting);
    expect(out.texts[0]).toContain('/help');
  });
});

describe('/help', () => {
  it.each(['en', 'ru'] as const)(
    "lists every student's command with its %s usage and description, and no other",
    async (lang) => {
      const out = await send('/help', lang);
      for (const c of commands) {
        const usage = c.usage ? ` ${c.usage[lang]}` : '';
        const line = `/${c.name}${usage}: ${c.description[lang]}`;
        if (c.role === undefined) expect(out.texts[0]).toContain(line);
        else expect(out.texts[0]).not.toContain(line);
      }
    },
  );

  it.each([
    ['en', '/gradcam [model] [class] [gradcam|gradcam++] (with a photo): ', 'Example: /gradcam'],
    ['ru', '/saliency [модель] [smooth] (с фото): ', 'Пример: /saliency lenet-mnist smooth'],
  ] as const)('shows the arguments and an example in %s', async (lang, usage, example) => {
    const text = (await send('/help', lang)).texts[0] ?? '';
    expect(text).toContain(usage);
    expect(text).toContain(example);
    expect(text).toContain('/predict lenet-mnist');
    expect(text).toContain('/lang ru');
    // Every example names its own command and only arguments the command knows of.
    for (const c of commands.filter((c) => c.example)) {
      expect(c.example).toMatch(new RegExp(`^/${c.name} \\S`));
    }
  });

  it('gives every command that takes typed arguments a usage line in both languages', async () => {
    const typed = commands.filter((c) => (c.options ?? []).some((o) => o.type === 'string'));
    expect(typed.filter((c) => !c.usage?.en || !c.usage.ru).map((c) => c.name)).toEqual([]);
    const text = (await send('/help', 'en')).texts[0] ?? '';
    expect(text).toContain('/check <task> (with your .keras or .h5 file, or as a reply to it): ');
    expect(text).toContain('/label <digit> (as a reply to the photo): ');
    expect(text).toContain('Example: /check lenet');
    // A usage opens with <…> exactly when the command's first typed argument is required.
    for (const c of typed) {
      const first = (c.options ?? []).find((o) => o.type === 'string');
      expect(c.usage?.en.startsWith('<'), c.name).toBe(first?.required === true);
    }
  });
});

describe('/models', () => {
  it.each([
    ['en', 'test accuracy', '(default here)'],
    ['ru', 'точность на тесте', '(по умолчанию в этом чате)'],
  ] as const)(
    'answers with a table image, the shipped LeNet with its data set and accuracy in %s as its caption',
    async (lang, word, mark) => {
      const meta = (await env.registry.list()).find((m) => m.id === 'lenet-mnist');
      const out = await send('/models', lang);
      expect(out.texts).toEqual([]);
      expect(out.images).toHaveLength(1);
      expect(isPng(out.images[0]!.png)).toBe(true);
      const text = out.images[0]!.caption;
      expect(text).toContain(`lenet-mnist: lenet`);
      expect(text).toContain('mnist');
      expect(text).toContain(word);
      expect(text).toContain(mark);
      if (meta?.testAccuracy !== undefined) {
        expect(text).toContain(formatPercent(meta.testAccuracy, lang, 2));
      }
    },
  );
});

describe('/predict', () => {
  it.each([
    ['en', 'Top 3:'],
    ['ru', 'Топ-3:'],
  ] as const)('answers img/7.png with "7" and a chart, in %s', async (lang, top) => {
    const out = await send('/predict', lang, await readImg('7.png'));
    expect(out.texts).toEqual([]);
    expect(out.images).toHaveLength(1);
    const { png, caption } = out.images[0]!;
    expect(isPng(png)).toBe(true);
    expect(caption.split('\n')[0]).toMatch(/^lenet-mnist: 7 \(/);
    expect(caption).toContain(top);
    expect(caption).not.toContain('⚠');
  });

  it.each([
    ['en', 'does not look confidently like a handwritten digit'],
    ['ru', 'Не похоже, что это рукописная цифра'],
  ] as const)('says in %s when a picture is not confidently a digit', async (lang, note) => {
    const out = await send('/predict lenet-mnist', lang, await readImg('abrakadabra.png'));
    expect(out.images[0]?.caption).toContain(note);
  });

  it('uses a generic note for models of other classes', () => {
    const r = {
      label: 'tabby',
      confidence: 0.4,
      confident: false,
      topK: [{ classIndex: 281, label: 'tabby', probability: 0.4 }],
    };
    const meta = { id: 'mobilenet-imagenet', preprocess: 'rgb-signed' as const };
    const en = predictionCaption(meta, r, (k) => k, 'en');
    expect(en).toContain('predict.not_confident');
    expect(en).not.toContain('predict.not_confident_digit');
  });
});

describe('/arch', () => {
  it.each(['en', 'ru'] as const)(
    'answers /arch lenet-mnist with the layer table image and a %s summary',
    async (lang) => {
      const out = await send('/arch lenet-mnist', lang);
      expect(out.texts).toEqual([]);
      expect(out.images).toHaveLength(1);
      expect(isPng(out.images[0]!.png)).toBe(true);
      const caption = out.images[0]!.caption;
      expect(caption).toMatch(/^lenet-mnist \(lenet, mnist\): /);
      expect(caption).toContain(formatNumber(44_426, lang));
      expect(caption).toContain(lang === 'en' ? 'ms per image' : 'мс на изображение');
      expect(caption).toContain(`(${tf.getBackend()})`);
    },
  );

  it('describes the chat’s default model without an argument', async () => {
    const out = await send('/arch', 'en');
    expect(out.images[0]?.caption).toMatch(/^lenet-mnist /);
  });

  it('refuses an unknown model, listing the installed ones, and a second word', async () => {
    const unknown = await send('/arch alexnet-literal', 'en');
    expect(unknown.images).toEqual([]);
    expect(unknown.texts[0]).toBe(
      en['error.model.unknown']
        .replace('{{model}}', 'alexnet-literal')
        .replace('{{known}}', (await env.registry.list()).map((m) => m.id).join(', ')),
    );
    const extra = await send('/arch lenet-mnist please', 'en');
    expect(extra.texts[0]).toContain('Usage: /arch [model]');
    const russian = await send('/arch lenet-mnist пожалуйста', 'ru');
    expect(russian.texts[0]).toContain('Как пользоваться: /arch [модель]');
  });

  it.each(['en', 'ru'] as const)(
    'gives sizes in decimal units and ends no sentence of MACs on a number, in %s',
    async (lang) => {
      const profile = await env.services.profiler.profile('lenet-mnist');
      const notes = archNotes(profile, translator(lang), lang);
      // 44,426 float32 weights: 177,704 bytes, 177.7 kB (173.5 with 1,024-byte units).
      expect(notes[0]).toContain(lang === 'en' ? '177.7 kB' : '177,7 кБ');
      // FLOPs in short form end in `тыс.` in Russian: a full stop after it would be doubled.
      expect(notes[1]).toContain(`FLOPs (${formatCompact(profile.stats.flops, lang)})`);
      expect(notes[1]).not.toMatch(/\d\s*(тыс|млн|млрд)?\.(\s|$)/);
      expect(notes[1]).not.toContain('..');
      if (lang === 'ru') {
        expect(notes[1]).toContain('Пакетная нормализация');
        expect(notes[1]).not.toContain('Batch');
      }
    },
  );
});

describe('/compare', () => {
  it.each(['en', 'ru'] as const)(
    'answers with the comparison table image and a %s caption',
    async (lang) => {
      const out = await send('/compare', lang);
      expect(out.texts).toEqual([]);
      expect(out.images).toHaveLength(1);
      expect(isPng(out.images[0]!.png)).toBe(true);
      expect(out.images[0]!.caption).toContain(`(${tf.getBackend()})`);
      expect(out.images[0]!.caption).toContain('/arch');
    },
  );

  it('measures each model once per process, not at every /compare', async () => {
    await send('/compare', 'en');
    const get = vi.spyOn(env.registry, 'get');
    const out = await send('/compare', 'en');
    expect(isPng(out.images[0]!.png)).toBe(true);
    expect(get).not.toHaveBeenCalled();
    get.mockRestore();
  });
});

/** The shipped LeNet's metadata, recast as a uint8-quantized model of another id. */
async function quantizedMeta(float32TestAccuracy?: number): Promise<ModelMeta> {
  const lenet = (await env.registry.list()).find((m) => m.id === 'lenet-mnist');
  return {
    ...lenet!,
    id: 'quantized-lenet',
    testAccuracy: 0.9895,
    quantization: {
      dtype: 'uint8',
      ...(float32TestAccuracy === undefined ? {} : { float32TestAccuracy }),
      float32Bytes: 86_500_000,
      bytes: 21_734_000,
    },
  };
}

describe('quantized weights', () => {
  it.each([
    ['en', '21.73 (uint8)', '0.18', '86.5 MB as float32', '99.12% with the float32 ones'],
    ['ru', '21,73 (uint8)', '0,18', 'во float32 — 86,5 МБ', 'у весов float32 — 99,12\u00a0%'],
  ] as const)(
    'are marked beside their size in the %s comparison, the float32 accuracy in a footnote',
    async (lang, size, lenetSize, float32Size, float32Accuracy) => {
      const profile = await env.services.profiler.profile('lenet-mnist');
      const meta = await quantizedMeta(0.9912);
      const table = compareTable(
        [
          { meta: profile.meta, profile },
          { meta, profile: { ...profile, meta, weightFileBytes: 21_734_000 } },
        ],
        translator(lang),
        lang,
      );
      expect(table.rows.map((r) => r[5])).toEqual([lenetSize, size]);
      expect(table.footnotes).toHaveLength(2);
      expect(table.footnotes?.[1]).toMatch(/^quantized-lenet: /);
      expect(table.footnotes?.[1]).toContain(float32Size);
      expect(table.footnotes?.[1]).toContain(float32Accuracy);
    },
  );

  it('keep the size their metadata records when the model cannot be loaded', async () => {
    const meta = await quantizedMeta();
    const table = compareTable([{ meta }], translator('en'), 'en');
    expect(table.rows[0]?.[5]).toBe('21.73 (uint8)');
    expect(table.rows[0]?.[3]).toBe('—');
    expect(table.footnotes?.[1]).toBe(
      en['quantized.note_unmeasured']
        .replace('{{model}}', 'quantized-lenet')
        .replace('{{dtype}}', 'uint8')
        .replace('{{float32Size}}', '86.5 MB'),
    );
  });

  it.each([
    [
      'en',
      'quantized-lenet: lenet on mnist, test accuracy 98.95% (uint8 weights; float32: 99.12%)',
    ],
    [
      'ru',
      'quantized-lenet: lenet на mnist, точность на тесте 98,95\u00a0% (веса uint8; у float32: 99,12\u00a0%)',
    ],
  ] as const)('are named in the %s /models list, with the float32 accuracy', async (lang, line) => {
    const lenet = (await env.registry.list()).find((m) => m.id === 'lenet-mnist');
    const meta = await quantizedMeta(0.9912);
    const { core } = makeCore({
      overrides: {
        models: {
          list: () => Promise.resolve([lenet!, meta]),
          get: (id) => env.registry.get(id),
          use: (id, fn) => env.registry.use(id, fn),
          servedVersion: (id) => env.registry.servedVersion(id),
        },
      },
    });
    const { ctx, out } = fakeContext({ text: '/models', language: clients[lang] });
    await core.handle(ctx);
    expect(out.images).toHaveLength(1);
    expect(isPng(out.images[0]!.png)).toBe(true);
    expect(out.images[0]!.caption.split('\n')).toContain(line);
  });
});

describe('/history', () => {
  it.each([
    ['en', "You haven't sent anything yet"],
    ['ru', 'Вы ещё ничего не присылали'],
  ] as const)('says in %s when there is nothing yet', async (lang, text) => {
    const { ctx, out } = fakeContext({
      text: '/history',
      language: clients[lang],
      userId: `h-${lang}`,
    });
    await env.core.handle(ctx);
    expect(out.texts[0]).toContain(text);
  });

  it.each([
    ['en', 'Your last submissions:', 'no photo attached'],
    ['ru', 'Ваши последние запросы:', 'нет фото'],
  ] as const)('lists the last five, newest first, in %s', async (lang, header, failure) => {
    const userId = `hist-${lang}`;
    const seven = await readImg('7.png');
    for (let i = 0; i < 5; i++) {
      const { ctx } = fakeContext({ text: '/predict', userId, image: imageOf(seven) });
      await env.core.handle(ctx);
    }
    const { ctx: bad } = fakeContext({ text: '/predict', userId });
    await env.core.handle(bad);
    const { ctx, out } = fakeContext({ text: '/history', language: clients[lang], userId });
    await env.core.handle(ctx);
    const lines = (out.texts[0] ?? '').split('\n');
    expect(lines[0]).toBe(header);
    expect(lines).toHaveLength(6);
    expect(lines[1]).toContain(`/predict: ✗ ${failure}`);
    for (const line of lines.slice(2)) expect(line).toMatch(/\/predict lenet-mnist: 7 \(/);
  });
});

describe('/history in a group (issue 19)', () => {
  it('shows only what was sent in that group, never the private chat', async () => {
    const userId = 'hist-group';
    const group = { id: 'g-19', type: 'group' as const, title: 'CNN lab' };
    const seven = await readImg('7.png');
    const { ctx: privately } = fakeContext({ text: '/predict', userId, image: imageOf(seven) });
    await env.core.handle(privately);
    const { ctx: first, out: firstOut } = fakeContext({ text: '/history', userId, chat: group });
    await env.core.handle(first);
    expect(firstOut.texts).toEqual([en['history.empty']]);

    const { ctx: inGroup } = fakeContext({ text: '/predict', userId, chat: group });
    await env.core.handle(inGroup); // no photo: a failed submission in the group
    const { ctx: second, out: secondOut } = fakeContext({ text: '/history', userId, chat: group });
    await env.core.handle(second);
    const lines = (secondOut.texts[0] ?? '').split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('/predict: ✗');

    const { ctx: own, out: ownOut } = fakeContext({ text: '/history', userId });
    await env.core.handle(own);
    expect((ownOut.texts[0] ?? '').split('\n')).toHaveLength(3); // both, in the private chat
  });
});

describe('/history and the rate limit', () => {
  it('lists no row for a message the rate limit dropped', async () => {
    const limited = makeCore({ rateLimit: { points: 2, durationSeconds: 60 } });
    const userId = 'hist-limited';
    const seven = await readImg('7.png');
    for (let i = 0; i < 4; i++) {
      const { ctx } = fakeContext({ text: '/predict', userId, image: imageOf(seven) });
      await limited.core.handle(ctx);
    }
    // Two answered; the third got the notice and waits, replaced by the fourth: no rows.
    expect(limited.store.submissions.rows).toHaveLength(2);
    expect(limited.core.metrics).toMatchObject({ limited: 2, superseded: 1 });
    const history = makeCore({ overrides: { submissions: limited.store.submissions } });
    const { ctx, out } = fakeContext({ text: '/history', userId });
    await history.core.handle(ctx);
    const lines = (out.texts[0] ?? '').split('\n').slice(1);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/\/predict lenet-mnist: 7 \(/);
    await limited.core.close(100);
    await Promise.all([limited.registry.dispose(), history.registry.dispose()]);
  });
});

describe('/lang', () => {
  it.each([
    ['en', 'Language: English'],
    ['ru', 'Язык: русский'],
  ] as const)('shows the current language in %s', async (lang, text) => {
    const out = await send('/lang', lang);
    expect(out.texts[0]).toContain(text);
  });

  it('switches an English client to Russian and back to automatic', async () => {
    const userId = 'switcher';
    const say = async (text: string) => {
      const { ctx, out } = fakeContext({ text, userId, language: 'en-GB' });
      await env.core.handle(ctx);
      return out.texts[0] ?? '';
    };
    expect(await say('/lang ru')).toBe('Хорошо, теперь говорю по-русски.');
    expect(await say('/help')).toContain('Команды:');
    expect(await say('/lang en')).toBe("OK, I'll speak English from now on.");
    expect(await say('/lang ru')).toContain('по-русски');
    expect(await say('/lang auto')).toContain('(now: English)');
    expect(await say('/help')).toContain('Commands:');
  });

  it.each([
    ['en', "I don't understand “xx”. Usage: /lang ru | en | auto"],
    ['ru', 'Не понимаю «xx». Как пользоваться: /lang ru | en | auto'],
  ] as const)('refuses /lang xx in %s', async (lang, text) => {
    const out = await send('/lang xx', lang);
    expect(out.texts).toEqual([text]);
  });
});
