/**
 * issue 16 on the web chat: the same confirm-or-correct buttons as Telegram, pressed over HTTP
 * and in a real browser page, writing label rows.
 */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startWebChat,
  type RunningWebChat,
  type WebAnswer,
} from '../../src/adapters/web/server.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { makeCore, readImg } from '../unit/core/helpers.ts';

const CHROMIUM = '/usr/bin/chromium';

let env: ReturnType<typeof makeCore>;
let web: RunningWebChat;

beforeAll(async () => {
  await initBackend();
  env = makeCore();
  web = await startWebChat(env.core, {
    port: 0,
    maxImageBytes: 2_000_000,
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await web.stop();
  await env.registry.dispose();
});

/** Each browser's identity cookie, as the server assigned it (keyed by the test's user name). */
const browsers = new Map<string, string>();

async function post(
  fields: Record<string, string>,
  image?: { bytes: Uint8Array; name: string },
): Promise<WebAnswer> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (image) form.append('image', new Blob([image.bytes]), image.name);
  const browser = fields.userId ?? '';
  const cookie = browsers.get(browser);
  const res = await fetch(new URL('api/messages', web.url), {
    method: 'POST',
    body: form,
    ...(cookie ? { headers: { cookie } } : {}),
  });
  expect(res.status).toBe(200);
  const set = res.headers.get('set-cookie');
  if (set) browsers.set(browser, set.split(';')[0]!);
  return (await res.json()) as WebAnswer;
}

describe('confirm or correct in the web chat', () => {
  it('puts the buttons under a digit prediction; a press writes one label row and finishes them', async () => {
    const answer = await post(
      { text: '', userId: 'web-a', language: 'en' },
      { bytes: await readImg('3.png'), name: '3.png' },
    );
    const reply = answer.replies[0]!;
    expect(reply.type).toBe('image');
    if (reply.type !== 'image') return;
    const buttons = reply.buttons!.flat();
    expect(buttons.map((b) => b.text)).toEqual(['✓ right', ...'0123456789']);
    const row = env.store.submissions.rows.at(-1)!;
    expect(buttons[0]!.data).toBe(`l:${row.messageId}:y`);
    // Message ids carry the server's boot, so a restart's ids never name an older photo.
    expect(row.messageId).toMatch(/^[0-9a-f]{8}-\d+$/);

    // Each web user is their own private chat: another browser's press finds no photo of theirs.
    const other = await post({
      text: '',
      userId: 'web-b',
      language: 'en',
      press: buttons[4]!.data,
    });
    expect(other.replies).toEqual([
      {
        type: 'notice',
        text: "I can't find a classified photo here. Send /label <digit> as a reply to the photo you sent me, or press the buttons under my answer.",
      },
    ]);
    expect(env.store.classData.labels).toHaveLength(0);

    const pressed = await post({
      text: '',
      userId: 'web-a',
      language: 'en',
      press: buttons[6]!.data,
    });
    expect(pressed.replies).toEqual([
      { type: 'notice', text: 'Saved: 5. Thank you!' },
      { type: 'finish', note: '✎ web corrected: it is 5' },
    ]);
    expect(env.store.classData.labels).toEqual([
      expect.objectContaining({
        submissionId: row.id,
        label: '5',
        role: 'student',
        source: 'corrected',
        // The server assigned the browser its identity (a cookie), not the form's userId.
        by: { platform: 'web', userId: row.userId },
      }),
    ]);
  });

  it.skipIf(!existsSync(CHROMIUM))(
    'shows the buttons in the page and marks the answer after a tap',
    async () => {
      const browser = await chromium.launch({ executablePath: CHROMIUM });
      try {
        const page = await browser.newPage({ locale: 'en-US' });
        await page.goto(web.url);
        await page.setInputFiles('#image', {
          name: '7.png',
          mimeType: 'image/png',
          buffer: await readImg('7.png'),
        });
        const confirm = page.locator('.buttons button', { hasText: '✓ right' });
        await confirm.waitFor({ timeout: 20_000 });
        const before = env.store.classData.labels.length;
        await confirm.click();
        await page.locator('.msg.bot', { hasText: 'confirmed: 7' }).waitFor({ timeout: 20_000 });
        expect(await page.locator('.buttons').count()).toBe(0);
        expect(env.store.classData.labels).toHaveLength(before + 1);
        expect(env.store.classData.labels.at(-1)).toMatchObject({
          label: '7',
          source: 'confirmed',
        });
      } finally {
        await browser.close();
      }
    },
  );
});
