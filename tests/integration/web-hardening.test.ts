/**
 * Issue 19: the web chat's identity comes from a cookie the server signs, never from the client;
 * security headers, request timeout, a cap on concurrent uploads, malformed multipart as a logged
 * 400. The loopback-only binding and the Host/Origin checks are in web-chat.test.ts.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IDENTITY_COOKIE,
  startWebChat,
  type RunningWebChat,
} from '../../src/adapters/web/server.ts';
import type { ChatContext, Core } from '../../src/core/index.ts';
import { captureLogger } from '../fixtures/log-lines.ts';

/** A core that records who sent what and, while held, answers only when released. */
function gatedCore() {
  const seen: ChatContext[] = [];
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  let waiting = 0;
  const core: Core = {
    commands: [],
    inFlight: 0,
    metrics: {
      received: 0,
      busy: 0,
      busyUser: 0,
      limited: 0,
      superseded: 0,
      answeredLate: 0,
      droppedLate: 0,
    },
    async handle(ctx) {
      seen.push(ctx);
      waiting++;
      await gate;
      waiting--;
      await ctx.reply(`hello ${ctx.user.id}`);
    },
    close: () => Promise.resolve(true),
  };
  return {
    core,
    seen,
    waiting: () => waiting,
    hold: () => {
      gate = new Promise((resolve) => (open = resolve));
    },
    release: () => {
      open();
      gate = Promise.resolve();
    },
  };
}

const { logger, lines } = captureLogger('info');

let env: ReturnType<typeof gatedCore>;
let web: RunningWebChat;

beforeAll(async () => {
  env = gatedCore();
  web = await startWebChat(env.core, {
    port: 0,
    maxImageBytes: 100_000,
    logger,
    sessionSecret: 'a-test-session-secret-0123456789',
    requestTimeoutSeconds: 1,
    maxConcurrentUploads: 2,
  });
});
afterAll(async () => {
  env.release();
  await web.stop();
});

const api = () => new URL('api/messages', web.url);

function upload(cookie?: string): Promise<Response> {
  const form = new FormData();
  form.append('text', '/predict');
  form.append('userId', 'victim');
  form.append('image', new Blob([new Uint8Array(100)]), 'x.png');
  return fetch(api(), { method: 'POST', body: form, headers: cookie ? { cookie } : {} });
}

/** `name=value` of the identity cookie a response set. */
function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith(`${IDENTITY_COOKIE}=`));
  return set?.split(';')[0] ?? '';
}

describe('web chat hardening (issue 19)', () => {
  it('sends nosniff and forbids framing on the page and the API', async () => {
    const page = await fetch(web.url);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const answer = await fetch(api(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"/help"}',
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('assigns the identity in a signed cookie and ignores the userId the client sends', async () => {
    const page = await fetch(web.url);
    const cookie = cookieOf(page);
    expect(cookie).toMatch(new RegExp(`^${IDENTITY_COOKIE}=w`));
    expect(page.headers.getSetCookie()[0]).toMatch(/HttpOnly/i);
    expect(page.headers.getSetCookie()[0]).toMatch(/SameSite=Strict/i);

    const first = await fetch(api(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ text: '/help', userId: 'victim' }),
    });
    const second = await fetch(api(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ text: '/help', userId: 'someone-else' }),
    });
    expect([first.status, second.status]).toEqual([200, 200]);
    const [a, b] = env.seen.slice(-2).map((c) => c.user.id);
    expect(a).toBe(b);
    expect(a).toMatch(/^w[\w-]{16}$/);
    expect(env.seen.some((c) => c.user.id === 'victim' || c.chat.id === 'victim')).toBe(false);

    // A cookie the server did not sign (someone else's id typed in) buys a fresh identity.
    const forged = await fetch(api(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: `${IDENTITY_COOKIE}=${a ?? ''}` },
      body: '{"text":"/help"}',
    });
    expect(forged.status).toBe(200);
    expect(env.seen.at(-1)?.user.id).not.toBe(a);
    expect(cookieOf(forged)).not.toBe('');
  });

  it('answers a malformed multipart body with 400 and a log line, never reaching the core', async () => {
    const before = env.seen.length;
    const res = await fetch(api(), {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="text"\r\n\r\n/help\r\n--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nPNG...',
    });
    expect(res.status).toBe(400);
    expect(env.seen.length).toBe(before);
    expect(lines.some((l) => l.includes('malformed multipart request'))).toBe(true);
  });

  it('caps the uploads handled at once: the next one gets 503 and Retry-After', async () => {
    env.hold();
    const held = [upload(), upload()];
    await expect.poll(() => env.waiting(), { timeout: 5000 }).toBe(2);
    const third = await upload();
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('5');
    env.release();
    const done = await Promise.all(held);
    expect(done.map((r) => r.status)).toEqual([200, 200]);
    expect((await upload()).status).toBe(200); // the slots are free again
  });

  it('cuts off a request that does not arrive whole within the timeout', async () => {
    const { port } = new URL(web.url);
    const started = Date.now();
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        // Headers promise 1000 bytes; 10 arrive, then nothing.
        socket.write(
          `POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"text":"`,
        );
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
      socket.setTimeout(10_000, () => {
        socket.destroy();
        resolve('still open');
      });
    });
    expect(outcome).not.toBe('still open');
    expect(outcome === '' || outcome.startsWith('HTTP/1.1 408')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
