/** The web chat's operator token: the URL `npm start` prints makes its holder admin there. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startWebChat,
  type RunningWebChat,
  type WebAnswer,
} from '../../src/adapters/web/server.ts';
import { makeCore } from '../unit/core/helpers.ts';

const TOKEN = 'operator-token-0123456789abcdef';
let env: ReturnType<typeof makeCore>;
let web: RunningWebChat;

beforeAll(async () => {
  env = makeCore();
  web = await startWebChat(env.core, {
    port: 0,
    maxImageBytes: 2_000_000,
    logger: pino({ level: 'silent' }),
    operatorToken: TOKEN,
  });
});
afterAll(async () => {
  await web.stop();
  await env.registry.dispose();
});

async function say(text: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(new URL('api/messages', web.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ text, userId: 'me' }),
  });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as WebAnswer;
  return answer.replies
    .map((r) => ('text' in r ? r.text : 'caption' in r ? r.caption : ''))
    .join('\n');
}

describe('the web chat operator token', () => {
  it('without the token a web user is a student', async () => {
    expect(await say('/grant 5 instructor')).toMatch(/^Sorry, \/grant is for admins only/);
  });

  it('a wrong token sets no operator cookie (only the anonymous identity)', async () => {
    const res = await fetch(`${web.url}?token=wrong-token-0123456789abcdef`, {
      redirect: 'manual',
    });
    expect(res.status).toBe(200);
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).not.toContain('cnn_operator');
    expect(set).not.toContain('wrong-token');
  });

  it('opening the printed URL sets an HttpOnly cookie that makes its holder admin', async () => {
    const res = await fetch(`${web.url}?token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^cnn_operator=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
    const cookie = setCookie.split(';')[0]!;
    expect(await say('/grant 5 instructor', { cookie })).toBe('5 is now an instructor.');
    expect((await env.store.users.find({ platform: 'web', userId: '5' }))?.role).toBe('instructor');
  });
});
