/** `/gradcam` and `/saliency` through the real core, over the shipped LeNet and in-memory storage. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExplainArgs } from '../../../src/core/explanation-reply.ts';
import type { Language } from '../../../src/core/i18n.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { fakeContext, imageOf, isPng, makeCore, readImg } from '../core/helpers.ts';

const clients: Record<Language, string> = { en: 'en-US', ru: 'ru-RU' };
let env: ReturnType<typeof makeCore>;

beforeAll(async () => {
  await initBackend();
  env = makeCore();
});
afterAll(async () => {
  await env.registry.dispose();
});

async function send(text: string, lang: Language, image?: Uint8Array) {
  const { ctx, out } = fakeContext({
    text,
    language: clients[lang],
    ...(image ? { image: imageOf(image) } : {}),
  });
  await env.core.handle(ctx);
  return out;
}

describe('/gradcam', () => {
  it.each([
    ['en', 'Grad-CAM, layer conv2', 'Where the heat is:', 'Check: with the hottest 20% blurred'],
    ['ru', 'Grad-CAM, слой conv2', 'Где сильнее всего:', 'Проверка: если размыть'],
  ] as const)(
    'answers img/7.png with an overlay and its explanation, in %s',
    async (lang, head, where, check) => {
      const out = await send('/gradcam', lang, await readImg('7.png'));
      expect(out.texts).toEqual([]);
      expect(out.images).toHaveLength(1);
      const { png, caption } = out.images[0]!;
      expect(isPng(png)).toBe(true);
      expect(caption.split('\n')[0]).toMatch(/^lenet-mnist: 7 \(/);
      expect(caption).toContain(head);
      expect(caption).toContain(where);
      expect(caption).toContain(check);
      expect(caption.length).toBeLessThanOrEqual(1024);
    },
  );

  it('explains another class than the answer when asked, with Grad-CAM++', async () => {
    const out = await send('/gradcam lenet-mnist 1 gradcam++', 'en', await readImg('7.png'));
    const caption = out.images[0]?.caption ?? '';
    expect(caption).toMatch(/^lenet-mnist: 1 \(/);
    expect(caption).toContain('Grad-CAM++');
    expect(caption).toContain("The model's own answer is 7");
  });

  it.each([
    ['en', 'Attach a photo'],
    ['ru', 'Прикрепите к команде фото'],
  ] as const)('asks for a photo in %s when there is none', async (lang, text) => {
    const out = await send('/gradcam', lang);
    expect(out.texts[0]).toContain(text);
  });

  it('answers an unknown class with a localized error', async () => {
    const out = await send('/gradcam 12', 'ru', await readImg('7.png'));
    expect(out.images).toEqual([]);
    expect(out.texts[0]).toContain('Не понимаю «12»');
  });
});

describe('/saliency', () => {
  it.each([
    ['en', 'saliency map'],
    ['ru', 'карта значимости'],
  ] as const)('answers with the saliency overlay in %s', async (lang, method) => {
    const out = await send('/saliency', lang, await readImg('3.png'));
    const { png, caption } = out.images[0]!;
    expect(isPng(png)).toBe(true);
    expect(caption.split('\n')[0]).toContain(method);
  });

  it('refuses words it does not know', async () => {
    const out = await send('/saliency lenet-mnist please', 'en', await readImg('3.png'));
    expect(out.texts[0]).toContain('/saliency [model] [smooth]');
  });
});

describe('parseExplainArgs', () => {
  it.each([
    ['', {}],
    [
      'Mobilenet-ImageNet great grey owl GRADCAM++',
      { model: 'mobilenet-imagenet', method: 'gradcam++', classQuery: 'great grey owl' },
    ],
    ['101 gradcam', { method: 'gradcam', classQuery: '101' }],
  ])('reads "%s"', (raw, value) => {
    expect(parseExplainArgs(raw, ['lenet-mnist', 'mobilenet-imagenet'], true)).toEqual({
      ok: true,
      value,
    });
  });
  it('says a model of the zoo is not installed instead of reading its id as a class', () => {
    const r = parseExplainArgs('mobilenet-imagenet tusker', ['lenet-mnist'], true);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.id).toBe('model.unknown');
    // A class name with a hyphen is still a class.
    expect(parseExplainArgs('three-toed sloth', ['lenet-mnist'], true)).toEqual({
      ok: true,
      value: { classQuery: 'three-toed sloth' },
    });
  });
  it('reads smooth for /saliency', () => {
    expect(parseExplainArgs('smooth lenet-mnist', ['lenet-mnist'], false)).toEqual({
      ok: true,
      value: { model: 'lenet-mnist', smooth: true },
    });
  });
});
