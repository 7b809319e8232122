import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { initialLogLevel } from './config.ts';

/**
 * Where log lines go: on a terminal (stderr is a TTY), pino-pretty's coloured one-line-per-event
 * text for a person reading along; otherwise (a file, journald, a container's log driver, a pipe)
 * pino's JSON lines, for machines. Both synchronous, so that nothing is lost on `process.exit`.
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
 * output). Secrets are redacted by key name. The level starts as `LOG_LEVEL` says (silent under
 * vitest, else info); entry points set it from their configuration.
 */
export const logger: Logger = pino(
  {
    level: initialLogLevel(),
    redact: {
      paths: ['*.token', '*.password', '*.TELEGRAM_BOT_TOKEN', '*.DISCORD_TOKEN'],
      censor: '[secret]',
    },
  },
  destination(),
);
