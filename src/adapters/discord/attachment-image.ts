import type { Attachment } from 'discord.js';
import type { ImageRef } from '../../core/index.ts';

/** How long one attachment download may take. */
const DOWNLOAD_TIMEOUT_MS = 30_000;

/**
 * A Discord attachment as the core's lazy image: its announced size (checked by the core before
 * anything is downloaded) and a download from its CDN URL. Formats are judged from the bytes by
 * the core, never from the attachment's file name or content type.
 *
 * @example
 * const image = attachmentImage(interaction.options.getAttachment('image', true));
 */
export function attachmentImage(attachment: Pick<Attachment, 'url' | 'size' | 'name'>): ImageRef {
  return {
    async fetch() {
      const res = await fetch(attachment.url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
      // The URL carries a signature: the message says what failed without it.
      if (!res.ok) throw new Error(`downloading a Discord attachment failed: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    declaredBytes: attachment.size,
    fileName: attachment.name,
  };
}
