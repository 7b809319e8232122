import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { scrubSecrets, serializeError } from './secrets.ts';

/**
 * The options every logger of the process is built with: errors go through
 * {@link serializeError} (name, code, message, causes; secrets masked), each finished line through
 * {@link scrubSecrets} (every registered secret masked wherever it appears), and values under
 * secret-sounding keys are redacted by name.
 */
export const LOGGER_OPTIONS = {
  redact: {
    paths: ['*.token', '*.password', '*.TELEGRAM_BOT_TOKEN', '*.DISCORD_TOKEN'],
    censor: '[secret]',
  },
  serializers: { err: serializeError, error: serializeError, cause: serializeError },
  hooks: { streamWrite: scrubSecrets },
} satisfies LoggerOptions;

/**
 * A logger with {@link LOGGER_OPTIONS} writing to `destination` (tests capture lines this way).
 *
 * @example
 * const log = createLogger(new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } }));
 */
export function createLogger(destination: DestinationStream, level = 'info'): Logger {
  return pino({ ...LOGGER_OPTIONS, level }, destination);
}

/**
 * The process-wide structured logger (pino, JSON lines on stderr so stdout stays clean for
 * `--json` CLI output). Secrets never reach a line: see {@link LOGGER_OPTIONS}.
 */
export const logger: Logger = createLogger(
  pino.destination(2),
  process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
);
