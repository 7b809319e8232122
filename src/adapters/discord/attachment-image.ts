import type { Attachment } from 'discord.js';
import type { ImageRef } from '../../core/index.ts';
import { UserError } from '../../errors.ts';

/** How long one attachment download may take. */
const DOWNLOAD_TIMEOUT_MS = 30_000;

/** Default cap of one download, bytes: the default `MAX_IMAGE_BYTES`. */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 20_000_000;

/**
 * Reads a response body, stopping as soon as it passes `maxBytes` (issue 19: the body is read
 * while streaming, never whole, so a CDN answer larger than announced cannot fill the memory).
 * @throws {UserError} `image.too_large_bytes` past `maxBytes`.
 */
export async function readCapped(res: Response, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    // Leaving the loop early cancels the stream, which closes the connection.
    for await (const value of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += value.length;
      if (total > maxBytes) {
        throw new UserError('image.too_large_bytes', `the download passed ${maxBytes} bytes`, {
          bytes: total,
          maxBytes,
        });
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/**
 * A Discord attachment as the core's lazy image: its announced size (checked by the core before
 * anything is downloaded) and a download from its CDN URL. Formats are judged from the bytes by
 * the core, never from the attachment's file name or content type.
 *
 * @example
 * const image = attachmentImage(interaction.options.getAttachment('image', true));
 */
export function attachmentImage(
  attachment: Pick<Attachment, 'url' | 'size' | 'name'>,
  maxBytes = DEFAULT_MAX_DOWNLOAD_BYTES,
): ImageRef {
  return {
    async fetch() {
      const res = await fetch(attachment.url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
      // The URL carries a signature: the message says what failed without it.
      if (!res.ok) throw new Error(`downloading a Discord attachment failed: HTTP ${res.status}`);
      return readCapped(res, maxBytes);
    },
    declaredBytes: attachment.size,
    fileName: attachment.name,
  };
}
