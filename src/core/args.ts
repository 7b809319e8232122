/**
 * Command argument parsers. Each is a pure function from the raw argument string to a
 * {@link ParseResult}: a bad argument is a value (with the {@link UserError} to answer), never an
 * exception, so parsers are tested as plain input -> output tables.
 */
import { UserError } from '../errors.ts';
import { isLanguage, type Language } from './i18n.ts';

/** The outcome of a parser: the value, or the user error to reply with. */
export type ParseResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: UserError };

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = <T>(error: UserError): ParseResult<T> => ({ ok: false, error });

/**
 * The value of a result, or its error thrown (for commands, whose errors the dispatcher answers).
 * @throws {UserError} the result's error.
 */
export function unwrap<T>(result: ParseResult<T>): T {
  if (!result.ok) throw result.error;
  return result.value;
}

/** Splits an argument string on whitespace; `''` gives `[]`. */
export function splitArgs(raw: string): string[] {
  const trimmed = raw.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

function invalid(value: string, usage: string): UserError {
  return new UserError('argument.invalid', `cannot parse "${value}"; usage: ${usage}`, {
    value,
    usage,
  });
}

/** Arguments of `/predict`. */
export interface PredictArgs {
  /** The model asked for; undefined for the chat's default. */
  readonly model?: string;
}

/**
 * Parses `/predict [model]`, and any command whose one argument is a model (`/arch [model]`).
 *
 * @param knownModels the installed model ids.
 * @param usage the command's usage, for the `argument.invalid` message.
 * @returns `{}` for no argument, `{ model }` for a known id (any letter case);
 *   `model.unknown` (with the known ids) for another name; `argument.invalid` for more than one
 *   word.
 * @example
 * parsePredictArgs('LeNet-MNIST', ['lenet-mnist']); // { ok: true, value: { model: 'lenet-mnist' } }
 * parsePredictArgs('mobilenet-imagenet', ['lenet-mnist']).ok; // false (model.unknown)
 */
export function parsePredictArgs(
  raw: string,
  knownModels: readonly string[],
  usage = '/predict [model]',
): ParseResult<PredictArgs> {
  const words = splitArgs(raw);
  if (words.length === 0) return ok({});
  const [first] = words;
  if (words.length > 1 || first === undefined) return fail(invalid(raw.trim(), usage));
  const model = first.toLowerCase();
  if (!knownModels.includes(model)) {
    const known = knownModels.join(', ');
    return fail(
      new UserError('model.unknown', `unknown model "${first}"; known: ${known || 'none'}`, {
        model: first,
        known,
      }),
    );
  }
  return ok({ model });
}

/**
 * What `/lang` was asked to do: `show` the current language, `set` a language, or `auto`
 * (follow the client's language again).
 */
export type LangArgs =
  | { readonly action: 'show' }
  | { readonly action: 'set'; readonly language: Language }
  | { readonly action: 'auto' };

/**
 * Parses `/lang [ru|en|auto]` (any letter case).
 * @returns `argument.invalid` for anything else.
 * @example
 * parseLangArgs('RU'); // { ok: true, value: { action: 'set', language: 'ru' } }
 * parseLangArgs('xx').ok; // false
 */
export function parseLangArgs(raw: string): ParseResult<LangArgs> {
  const words = splitArgs(raw);
  if (words.length === 0) return ok({ action: 'show' });
  const word = words[0]?.toLowerCase() ?? '';
  if (words.length === 1 && word === 'auto') return ok({ action: 'auto' });
  if (words.length === 1 && isLanguage(word)) return ok({ action: 'set', language: word });
  return fail(invalid(raw.trim(), '/lang ru | en | auto'));
}

// issue 14: whom /grant and /revoke mean

/** A user a command names: their platform id, and their name when the platform gave it. */
export interface UserTarget {
  readonly userId: string;
  readonly name?: string;
}

/**
 * Finds the user a command is about: a mention the platform resolved (Telegram text mention,
 * Discord `<@id>` or user option), a `<@id>` written in the text, a numeric id, or else the
 * author of the replied-to message. Returns the remaining words too (`instructor`).
 *
 * @returns `user.unknown` when nothing names a user (a bare `@username` is not resolvable:
 *   bots cannot look users up by username).
 * @example
 * parseUserTarget('123456 instructor', {}); // { ok: true, value: { target: { userId: '123456' }, rest: ['instructor'] } }
 * parseUserTarget('instructor', { replyTo: { id: '42', name: 'Ann' } }).ok; // true, Ann
 */
export function parseUserTarget(
  raw: string,
  from: {
    readonly replyTo?: { readonly id: string; readonly name: string };
    readonly mentions?: readonly { readonly id: string; readonly name: string }[];
  },
): ParseResult<{ target: UserTarget; rest: string[] }> {
  const words = splitArgs(raw);
  const mention = from.mentions?.[0];
  const idWord = words.findIndex((w) => /^<@!?\d+>$/.test(w) || /^\d{1,32}$/.test(w));
  const mentionWord = words.findIndex((w) => w.startsWith('@'));
  if (mention) {
    const rest = words.filter((w, i) => i !== (mentionWord >= 0 ? mentionWord : idWord));
    return ok({ target: { userId: mention.id, name: mention.name }, rest });
  }
  if (idWord >= 0) {
    const userId = (words[idWord] ?? '').replace(/\D/g, '');
    return ok({ target: { userId }, rest: words.filter((_, i) => i !== idWord) });
  }
  if (from.replyTo && mentionWord < 0) {
    return ok({ target: { userId: from.replyTo.id, name: from.replyTo.name }, rest: words });
  }
  return fail(new UserError('user.unknown', `no user named in "${raw}"`));
}
