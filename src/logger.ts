import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { initialLogLevel } from './config.ts';
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
 * Where log lines go: on a terminal (stderr is a TTY), pino-pretty's coloured one-line-per-event
 * text for a person reading along; otherwise (a file, journald, a container's log driver, a pipe)
 * pino's JSON lines, for machines. Both synchronous, so that nothing is lost on `process.exit`.
 * Lines are scrubbed of secrets before either sees them.
 */
function destination(): DestinationStream {
  if (process.stderr.isTTY) {
    return PinoPretty({
      destination: 2,
      sync: true,
      colorize: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
  }
  return pino.destination(2);
}

/**
 * The process-wide structured logger (pino, on stderr so stdout stays clean for `--json` CLI
 * output). Secrets never reach a line: see {@link LOGGER_OPTIONS}. The level starts as `LOG_LEVEL`
 * says (silent under vitest, else info); entry points set it from their configuration.
 */
export const logger: Logger = createLogger(destination(), initialLogLevel());
