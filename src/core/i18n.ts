/**
 * Localized texts: English and Russian, with i18next.
 *
 * Why i18next: it is the most widely used JavaScript i18n library, takes plain JSON resources
 * (translators edit `locales/*.json`, no build step), implements CLDR plural rules through
 * `Intl.PluralRules` (Russian needs one / few / many), interpolates, and falls back to English
 * for a missing key. grammY's and discord.js's ecosystems both use it, so the adapters' own texts
 * (Discord command localizations) can come from the same files.
 *
 * Keys are flat (`error.image.pdf`): `keySeparator` is off, so a key is the same string in the
 * JSON, in the code and in the tests.
 */
import i18next from 'i18next';
import type { UserErrorId } from '../errors.ts';
import en from './locales/en.json' with { type: 'json' };
import ru from './locales/ru.json' with { type: 'json' };

/** The languages the core speaks. */
export const LANGUAGES = ['en', 'ru'] as const;

/** One of {@link LANGUAGES}. */
export type Language = (typeof LANGUAGES)[number];

/** Client languages answered in Russian: Russian, Ukrainian, Belarusian, Kazakh. */
const RUSSIAN_READERS = new Set(['ru', 'uk', 'be', 'kk']);

type PluralSuffix = 'zero' | 'one' | 'two' | 'few' | 'many' | 'other';
type StripPlural<K extends string> = K extends `${infer Base}_${PluralSuffix}` ? Base : K;

/**
 * Every message key, without i18next's plural suffixes (`rate_limited`, not
 * `rate_limited_one`): pass `count` to choose the plural form.
 */
export type MessageKey = StripPlural<keyof typeof en>;

/** Values interpolated into a message (`{{name}}`); `count` also selects the plural form. */
export type MessageParams = Readonly<Record<string, string | number>>;

/** Translates a key into one language. */
export type Translate = (key: MessageKey, params?: MessageParams) => string;

const i18n = i18next.createInstance();
void i18n.init({
  resources: { en: { translation: en }, ru: { translation: ru } },
  lng: 'en',
  fallbackLng: 'en',
  supportedLngs: [...LANGUAGES],
  keySeparator: false,
  nsSeparator: false,
  // Replies are plain text, never HTML: nothing to escape.
  interpolation: { escapeValue: false },
  // Resources are given inline: initialise synchronously so `translator` works at import time.
  initAsync: false,
  returnNull: false,
});

/** True when `s` is one of {@link LANGUAGES}. */
export function isLanguage(s: string): s is Language {
  return (LANGUAGES as readonly string[]).includes(s);
}

/**
 * The language to answer a client in, from the language code its platform reports: Russian for
 * Russian, Ukrainian, Belarusian and Kazakh clients (`ru`, `uk-UA`, `be`, `kk`), English for
 * everyone else and for an unknown client.
 *
 * @example
 * clientLanguage('uk-UA'); // 'ru'
 * clientLanguage('de');    // 'en'
 */
export function clientLanguage(code: string | undefined): Language {
  const primary = (code ?? '').trim().toLowerCase().split(/[-_]/)[0] ?? '';
  return RUSSIAN_READERS.has(primary) ? 'ru' : 'en';
}

/**
 * The language of a reply: the user's `/lang` choice when they made one, else the client's
 * language (see {@link clientLanguage}).
 *
 * @example
 * resolveLanguage(null, 'ru-RU'); // 'ru'
 * resolveLanguage('en', 'ru-RU'); // 'en'
 */
export function resolveLanguage(
  override: Language | null | undefined,
  clientCode: string | undefined,
): Language {
  return override ?? clientLanguage(clientCode);
}

/**
 * A translation function bound to one language.
 *
 * @example
 * const t = translator('ru');
 * t('rate_limited', { count: 5 }); // 'Вы пишете слишком часто. Подождите 5 секунд ...'
 */
export function translator(lang: Language): Translate {
  const t = i18n.getFixedT(lang);
  return (key, params) => t(key, params ? { ...params } : {});
}

/** The message key of a user error's localized text. */
export function userErrorKey(id: UserErrorId): MessageKey {
  return `error.${id}`;
}

/** The key of a short title of an error code (for `/history`); `internal` for unknown codes. */
export function errorTitleKey(code: string): MessageKey {
  const key = `error_title.${code}`;
  return key in en ? (key as MessageKey) : 'error_title.internal';
}

/**
 * A probability as a localized percentage with `digits` decimals (default 1): `98.5%` in English,
 * `98,5 %` in Russian. Values that would round to 0% or 100% without being so are shown as
 * `<0.1%` and `>99.9%`, so a near-certain answer never reads as a certain one.
 */
export function formatPercent(p: number, lang: Language, digits = 1): string {
  const format = (v: number): string =>
    new Intl.NumberFormat(lang, {
      style: 'percent',
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(v);
  const step = 10 ** -(digits + 2);
  if (p > 0 && p < step / 2) return `<${format(step)}`;
  if (p < 1 && p > 1 - step / 2) return `>${format(1 - step)}`;
  return format(p);
}

/** Bytes in a megabyte: decimal, as everywhere in this project (1 MB = 1,000,000 bytes). */
export const BYTES_PER_MB = 1_000_000;

/**
 * A size in bytes as localized decimal megabytes (1 MB = 1,000,000 bytes): `20 MB`, `20 МБ`.
 * @example
 * formatMegabytes(20_000_000, 'ru'); // '20 МБ'
 */
export function formatMegabytes(bytes: number, lang: Language): string {
  const mb = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(bytes / BYTES_PER_MB);
  return `${mb} ${lang === 'ru' ? 'МБ' : 'MB'}`;
}

/**
 * A number with the language's grouping and decimal signs, at most `digits` decimals (default
 * 0): `44,426` in English, `44 426` in Russian (no-break space).
 */
export function formatNumber(value: number, lang: Language, digits = 0): string {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(value);
}

/** A large count in short form, three significant digits: `282K`, `42.3M`; `42,3 млн`. */
export function formatCompact(value: number, lang: Language): string {
  return new Intl.NumberFormat(lang, {
    notation: 'compact',
    maximumSignificantDigits: 3,
  }).format(value);
}

/** A duration in milliseconds, to about three significant digits: `0.697`, `12.4`, `340`. */
export function formatMilliseconds(ms: number, lang: Language): string {
  const digits = ms < 1 ? 3 : ms < 10 ? 2 : ms < 100 ? 1 : 0;
  return formatNumber(ms, lang, digits);
}

/**
 * A size in bytes with a decimal unit (1 kB = 1,000 bytes, 1 MB = 1,000,000, as
 * {@link formatMegabytes}), the largest that leaves at least 1, one decimal.
 * @example
 * formatBytes(177_704, 'en'); // '177.7 kB'
 * formatBytes(177_704, 'ru'); // '177,7 кБ'
 */
export function formatBytes(bytes: number, lang: Language): string {
  const units = lang === 'ru' ? ['Б', 'кБ', 'МБ', 'ГБ'] : ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  // Rounded as shown, so that 999,960 bytes reads `1 MB`, not `1,000 kB`.
  while (Math.round(value * 10) / 10 >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${formatNumber(value, lang, unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A date and time, short and localized, in the server's time zone. */
export function formatDateTime(date: Date, lang: Language): string {
  return new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' }).format(date);
}
