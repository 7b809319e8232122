import type { IncomingCommand } from './context.ts';

/**
 * Reads a command from message text (or a photo's caption), as text adapters need it:
 * `/predict lenet-mnist` -> `{ name: 'predict', args: 'lenet-mnist' }`. A `@botname` suffix is
 * dropped (`/help@cnn_bot`), the name lower-cased. Text that does not start with `/` and a
 * command name is no command: undefined.
 *
 * @example
 * parseCommandText('/Predict@cnn_bot  lenet-mnist '); // { name: 'predict', args: 'lenet-mnist' }
 * parseCommandText('hello'); // undefined
 */
export function parseCommandText(text: string | undefined): IncomingCommand | undefined {
  const m = /^\/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?(?:\s+([\s\S]*))?$/.exec(
    (text ?? '').trim(),
  );
  if (!m) return undefined;
  return { name: (m[1] ?? '').toLowerCase(), args: (m[2] ?? '').trim() };
}
