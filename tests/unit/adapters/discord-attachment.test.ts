import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentImage } from '../../../src/adapters/discord/attachment-image.ts';
import { UserError } from '../../../src/errors.ts';

/** A CDN that answers with an endless chunked body, counting what it managed to send. */
let server: Server;
let url: string;
const sent = { bytes: 0, closed: false };

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/small.png') {
      res.end(Buffer.alloc(1000, 7));
      return;
    }
    res.writeHead(200, { 'content-type': 'image/png' });
    const chunk = Buffer.alloc(64 * 1024, 1);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) sent.bytes += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', () => {
      sent.closed = true;
    });
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('Discord attachment downloads (issue 19)', () => {
  it('stop while streaming once the body passes the cap, whatever size was announced', async () => {
    const image = attachmentImage(
      { url: `${url}/endless.png`, size: 1000, name: 'a.png' },
      1_000_000,
    );
    const error = await image.fetch().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).id).toBe('image.too_large_bytes');
    await expect.poll(() => sent.closed, { timeout: 5000 }).toBe(true);
    // Socket buffers aside, the server got no further than a few megabytes.
    expect(sent.bytes).toBeLessThan(16_000_000);
  });

  it('read a body within the cap whole', async () => {
    const image = attachmentImage({ url: `${url}/small.png`, size: 1000, name: 's.png' }, 1000);
    expect(Array.from(await image.fetch())).toEqual(Array.from(Buffer.alloc(1000, 7)));
  });
});
