/**
 * Keeping configured secrets (bot tokens, database and Redis passwords, the webhook secret) out of
 * every log line (issue 19). Two layers, both in `logger.ts`:
 *
 * 1. {@link serializeError}, pino's serializer of `err`: name, code, message, stack and nested
 *    causes only, each string scrubbed. Errors carry secrets in places a key-name redaction never
 *    sees: grammY's `HttpError` wraps a fetch error whose message holds the request URL (token
 *    included); Node's `ERR_INVALID_URL` has an `input` field holding the whole `DATABASE_URL`.
 * 2. {@link scrubSecrets} over each finished line: every registered secret, in plain, URL-encoded
 *    and JSON-escaped form, becomes `[secret]`; so do URL passwords (`scheme://user:pw@`),
 *    Telegram bot tokens and Discord bot tokens, registered or not.
 *
 * This module imports nothing from `src/`: the configuration registers its secrets here
 * ({@link registerSecrets}) and the logger reads them.
 */

/** What a secret is replaced with. */
export const SECRET_MASK = '[secret]';

/** Shorter values are not treated as secrets: masking `1` or `ab` would garble every line. */
const MIN_SECRET_LENGTH = 6;

const secrets = new Set<string>();
/** Longest first, so a secret containing another is masked whole. */
let ordered: string[] = [];

/**
 * Registers secret values: from now on no log line contains them. Values shorter than six
 * characters are ignored.
 *
 * @example
 * registerSecrets([config.TELEGRAM_BOT_TOKEN]);
 */
export function registerSecrets(values: Iterable<string | undefined>): void {
  for (const v of values) {
    if (v === undefined || v.length < MIN_SECRET_LENGTH) continue;
    for (const form of [v, encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]) {
      secrets.add(form);
    }
  }
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/** Forgets every registered secret (tests). */
export function clearSecrets(): void {
  secrets.clear();
  ordered = [];
}

/** A password in a URL's user information; `"` and `,` excluded to stay inside a JSON string. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@"',<>]*):[^\s/@"',<>]+@/gi;
/** A Telegram bot token: `<bot id>:<35 characters>`. */
const TELEGRAM_TOKEN = /(?<![0-9])\d{6,}:[A-Za-z0-9_-]{30,}/g;
/** A Discord bot token: three base64url parts separated by dots. */
const DISCORD_TOKEN = /\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}/g;

/**
 * Replaces every registered secret and every recognisable credential in a text by `[secret]`.
 *
 * @example
 * scrubSecrets('postgres://lab:hunter22@db/lab'); // 'postgres://lab:[secret]@db/lab'
 */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(SECRET_MASK);
  return out
    .replace(URL_PASSWORD, `$1:${SECRET_MASK}@`)
    .replace(TELEGRAM_TOKEN, SECRET_MASK)
    .replace(DISCORD_TOKEN, SECRET_MASK);
}

/**
 * The secret values of a configuration: every string whose key ends in `TOKEN`, `SECRET`,
 * `PASSWORD` or `KEY`, and the password of every value that is a URL with credentials
 * (`DATABASE_URL`, `REDIS_URL`...), read with a pattern when the URL does not parse, so that a
 * malformed URL's password is known before anything tries to parse it.
 */
export function secretsOfConfig(config: Readonly<Record<string, unknown>>): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== 'string') continue;
    if (/(TOKEN|SECRET|PASSWORD|KEY)$/.test(key)) found.push(value);
    const credentials = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(value)?.[1];
    if (credentials === undefined) continue;
    const colon = credentials.indexOf(':');
    if (colon < 0) continue;
    const password = credentials.slice(colon + 1);
    found.push(password);
    try {
      found.push(decodeURIComponent(password));
    } catch {
      // Not valid percent-encoding: the raw form is registered already.
    }
  }
  return found;
}

/** An error as logged: no field but these, every string scrubbed. */
export interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
  stack?: string;
  cause?: SerializedError | string;
  /** Errors an error wraps under another name (grammY's `HttpError.error`, AggregateError). */
  errors?: (SerializedError | string)[];
  [detail: string]: unknown;
}

/** Plain fields kept besides name, code and message: they say what failed, never with what. */
const KEPT_FIELDS = [
  'errno',
  'syscall',
  'address',
  'port',
  'status',
  'statusCode',
  'error_code',
  'description',
  'method',
] as const;

const MAX_DEPTH = 5;

/**
 * pino's serializer of errors: keeps the name, `code`, message, stack, a few diagnostic fields
 * and nested causes (`cause`, an `Error`-valued field such as grammY's `error`, AggregateError's
 * `errors`), with every secret masked. Anything else an error carries (request options, an
 * `input` URL, headers) is dropped.
 *
 * @example
 * pino({ serializers: { err: serializeError } });
 */
export function serializeError(err: unknown, depth = 0): SerializedError | string {
  if (!(err instanceof Error)) {
    if (err !== null && typeof err === 'object' && 'message' in err) {
      return serializeError(
        Object.assign(new Error(String(err.message)), { name: 'Object' }),
        depth,
      );
    }
    return scrubSecrets(String(err));
  }
  const out: SerializedError = {
    type: err.name || err.constructor.name,
    message: scrubSecrets(err.message),
  };
  const fields = err as unknown as Record<string, unknown>;
  const code = fields.code;
  if (typeof code === 'string' || typeof code === 'number') {
    out.code = typeof code === 'string' ? scrubSecrets(code) : code;
  }
  for (const k of KEPT_FIELDS) {
    const v = fields[k];
    if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'string') out[k] = scrubSecrets(v);
  }
  if (err.stack) out.stack = scrubSecrets(err.stack);
  if (depth >= MAX_DEPTH) return out;
  if (err.cause !== undefined) out.cause = serializeError(err.cause, depth + 1);
  const nested: (SerializedError | string)[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (k !== 'cause' && v instanceof Error) nested.push(serializeError(v, depth + 1));
  }
  if (err instanceof AggregateError) {
    for (const e of err.errors as unknown[]) nested.push(serializeError(e, depth + 1));
  }
  if (nested.length > 0) out.errors = nested;
  return out;
}
