/**
 * Downloading a message's file from the Bot API: `getFile`, then
 * `GET <apiRoot>/file/bot<token>/<file_path>`, never more than the download limit.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { GrammyError, type Api } from 'grammy';
import type { File } from 'grammy/types';
import { UserError } from '../../errors.ts';
import type { TelegramFileRef } from './update.ts';

/** The official Bot API's `getFile` limit: larger files cannot be downloaded from it. */
export const BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024;

/** Options of {@link createFileDownloader}. */
export interface FileDownloaderOptions {
  readonly api: Pick<Api, 'getFile'>;
  /** `https://api.telegram.org`, or a local Bot API server; no trailing slash. */
  readonly apiRoot: string;
  readonly token: string;
  /** Largest download, bytes ({@link BOT_API_DOWNLOAD_LIMIT} for the official server). */
  readonly maxBytes: number;
  /** Time allowed for one download (default 60 s). */
  readonly timeoutMs?: number;
}

/**
 * Creates the function that downloads a message's file. A file announced (in the message or by
 * `getFile`) as larger than `maxBytes` is refused with `image.too_large_bytes` before any byte is
 * fetched; a file that turns out larger while streaming is cut off and refused the same way.
 *
 * A local Bot API server started with `--local` answers `getFile` with an absolute path on its
 * own disk instead of a download path; that file is read directly (the bot runs beside it).
 *
 * Errors never contain the download URL: it holds the bot token.
 *
 * @example
 * const download = createFileDownloader({ api: bot.api, apiRoot, token, maxBytes: 20 << 20 });
 * const bytes = await download({ fileId: doc.file_id, fileSize: doc.file_size });
 */
export function createFileDownloader(
  options: FileDownloaderOptions,
): (file: TelegramFileRef) => Promise<Uint8Array> {
  const { api, apiRoot, token, maxBytes, timeoutMs = 60_000 } = options;
  const tooLarge = (bytes: number, detail: string): UserError =>
    new UserError('image.too_large_bytes', `${detail}: over the ${maxBytes}-byte download limit`, {
      bytes,
      maxBytes,
    });

  return async (file) => {
    if (file.fileSize !== undefined && file.fileSize > maxBytes) {
      throw tooLarge(file.fileSize, `the message announces ${file.fileSize} bytes`);
    }
    let info: File;
    try {
      info = await api.getFile(file.fileId);
    } catch (e) {
      // The official server's answer for a file over its 20 MB limit.
      if (e instanceof GrammyError && /file is too big/i.test(e.description)) {
        throw tooLarge(Math.max(file.fileSize ?? 0, maxBytes + 1), 'getFile: file is too big');
      }
      throw e;
    }
    if (info.file_size !== undefined && info.file_size > maxBytes) {
      throw tooLarge(info.file_size, `getFile announces ${info.file_size} bytes`);
    }
    const filePath = info.file_path;
    if (!filePath) throw new Error('getFile returned no file_path');
    if (path.isAbsolute(filePath)) return readLocal(filePath, maxBytes, tooLarge);
    const encoded = filePath.split('/').map(encodeURIComponent).join('/');
    let res: Response;
    try {
      res = await fetch(`${apiRoot}/file/bot${token}/${encoded}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw withoutToken(e, token);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`downloading a Telegram file failed: HTTP ${res.status}`);
    }
    return readCapped(res, maxBytes, tooLarge);
  };
}

/** Reads a response body, refusing it once it exceeds `maxBytes`. */
async function readCapped(
  res: Response,
  maxBytes: number,
  tooLarge: (bytes: number, detail: string) => UserError,
): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(declared, `the download announces ${declared} bytes`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    const value = chunk.value as Uint8Array;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(total, 'the download kept going');
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks, total));
}

/** Reads a file a local Bot API server stored on this machine, within the limit. */
async function readLocal(
  file: string,
  maxBytes: number,
  tooLarge: (bytes: number, detail: string) => UserError,
): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw tooLarge(size, `the local file has ${size} bytes`);
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}

/** The error, or, should the network library have quoted the URL, a copy without the token. */
function withoutToken(e: unknown, token: string): unknown {
  if (e instanceof Error && e.message.includes(token)) {
    return new Error(
      `downloading a Telegram file failed: ${e.message.split(token).join('<token>')}`,
    );
  }
  return e;
}
