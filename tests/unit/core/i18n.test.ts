import { describe, expect, it } from 'vitest';
import { USER_ERROR_IDS } from '../../../src/errors.ts';
import {
  clientLanguage,
  errorTitleKey,
  formatBytes,
  formatMegabytes,
  formatPercent,
  resolveLanguage,
  translator,
  userErrorKey,
} from '../../../src/core/i18n.ts';
import en from '../../../src/core/locales/en.json' with { type: 'json' };
import ru from '../../../src/core/locales/ru.json' with { type: 'json' };

const base = (k: string): string => k.replace(/_(zero|one|two|few|many|other)$/, '');

describe('clientLanguage', () => {
  it.each([
    ['ru', 'ru'],
    ['ru-RU', 'ru'],
    ['uk', 'ru'],
    ['uk-UA', 'ru'],
    ['be', 'ru'],
    ['kk', 'ru'],
    ['KK_kz', 'ru'],
    ['en', 'en'],
    ['en-GB', 'en'],
    ['de', 'en'],
    ['', 'en'],
    [undefined, 'en'],
  ] as const)('answers a %s client in %s', (code, lang) => {
    expect(clientLanguage(code)).toBe(lang);
  });
});

describe('resolveLanguage', () => {
  it("prefers the user's /lang choice to the client's language", () => {
    expect(resolveLanguage('en', 'ru-RU')).toBe('en');
    expect(resolveLanguage('ru', 'de')).toBe('ru');
  });
  it("follows the client's language without a choice", () => {
    expect(resolveLanguage(null, 'uk')).toBe('ru');
    expect(resolveLanguage(undefined, 'fr')).toBe('en');
  });
});

describe('locales', () => {
  it('has the same messages in Russian and English', () => {
    const enKeys = new Set(Object.keys(en).map(base));
    const ruKeys = new Set(Object.keys(ru).map(base));
    expect([...ruKeys].sort()).toEqual([...enKeys].sort());
  });

  it('has a non-empty message and a short title for every user error, in both languages', () => {
    for (const id of USER_ERROR_IDS) {
      for (const lang of ['en', 'ru'] as const) {
        const t = translator(lang);
        expect(t(userErrorKey(id)), `${lang} ${id}`).not.toBe(userErrorKey(id));
        expect(t(userErrorKey(id)).length).toBeGreaterThan(10);
        expect(t(errorTitleKey(id)), `${lang} title ${id}`).not.toMatch(/^error_title\./);
      }
    }
  });

  it('uses the same placeholders in both languages', () => {
    const placeholders = (s: string): string[] => (s.match(/\{\{\w+\}\}/g) ?? []).sort();
    const ruByBase = new Map(Object.entries(ru).map(([k, v]) => [base(k), v]));
    for (const [k, v] of Object.entries(en)) {
      expect(placeholders(ruByBase.get(base(k)) ?? ''), k).toEqual(placeholders(v));
    }
  });

  it('writes Russian in Cyrillic (no untranslated English left)', () => {
    for (const [k, v] of Object.entries(ru)) {
      if (k === 'predict.caption' || k === 'history.ok' || k === 'history.failed') continue;
      // Keras class names (Conv2D, MaxPool) are the same in both languages; so are texts with
      // no words at all ("{{kernel}}×{{kernel}}", "{{accuracy}}% > {{bar}}%").
      if (k.startsWith('lab.op.') || !/[a-z]/i.test(v.replace(/\{\{\w+\}\}/g, ''))) continue;
      expect(v, k).toMatch(/[а-яё]/i);
    }
  });

  it('chooses the Russian plural form by the number', () => {
    const t = translator('ru');
    expect(t('rate_limited', { count: 1 })).toContain('1 секунду');
    expect(t('rate_limited', { count: 3 })).toContain('3 секунды');
    expect(t('rate_limited', { count: 25 })).toContain('25 секунд ');
    expect(t('rate_limited', { count: 21 })).toContain('21 секунду');
    expect(translator('en')('rate_limited', { count: 1 })).toContain('1 second ');
    expect(translator('en')('rate_limited', { count: 5 })).toContain('5 seconds');
  });

  it('falls back to the internal-error title for an unknown code', () => {
    expect(errorTitleKey('something.else')).toBe('error_title.internal');
  });
});

describe('formatting', () => {
  it('formats percentages the local way and never rounds a near-certain answer to 100%', () => {
    expect(formatPercent(0.985, 'en')).toBe('98.5%');
    expect(formatPercent(0.985, 'ru')).toBe('98,5\u00a0%');
    expect(formatPercent(0.99999, 'en')).toBe('>99.9%');
    expect(formatPercent(0.00001, 'en')).toBe('<0.1%');
    expect(formatPercent(0.9901, 'en', 2)).toBe('99.01%');
  });
  it('formats sizes in decimal megabytes', () => {
    expect(formatMegabytes(20_000_000, 'en')).toBe('20 MB');
    expect(formatMegabytes(20_000_000, 'ru')).toBe('20 МБ');
    expect(formatMegabytes(20 * 2 ** 20, 'en')).toBe('21 MB');
  });

  it('formats sizes with decimal units, 1 kB being 1,000 bytes', () => {
    expect(formatBytes(999, 'en')).toBe('999 B');
    expect(formatBytes(177_704, 'en')).toBe('177.7 kB');
    expect(formatBytes(177_704, 'ru')).toBe('177,7 кБ');
    expect(formatBytes(86_500_000, 'en')).toBe('86.5 MB');
    expect(formatBytes(86_500_000, 'ru')).toBe('86,5 МБ');
    expect(formatBytes(999_960, 'en')).toBe('1 MB');
    expect(formatBytes(2_500_000_000, 'en')).toBe('2.5 GB');
  });
});
