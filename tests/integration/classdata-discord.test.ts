/**
 * issue 16 on Discord: buttons under a `/predict` answer, routed by `custom_id` through the one
 * InteractionCreate listener (no collectors, so a restarted bot still serves old buttons),
 * against the fake Discord's component interactions and webhook message edits.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord } from '../../src/adapters/discord/start.ts';
import type { RunningAdapter } from '../../src/adapters/index.ts';
import { loadConfig } from '../../src/config.ts';
import { initBackend } from '../../src/ml/backend.ts';
import {
  startFakeDiscord,
  STUDENT,
  type FakeDiscord,
  type FakeUser,
  type RecordedRequest,
} from '../fakes/discord-server.ts';
import { makeCore, readImg } from '../unit/core/helpers.ts';

const TOKEN = 'MTAwMDAw.fake-discord-token.c2VjcmV0LXRlc3Q';
const BORIS: FakeUser = { id: '300000000000000002', username: 'boris', global_name: 'Boris' };
const PROF: FakeUser = { id: '300000000000000009', username: 'prof', global_name: 'Prof' };

let env: ReturnType<typeof makeCore>;
let discord: FakeDiscord;
let adapter: RunningAdapter;

function config() {
  return loadConfig({
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: discord.applicationId,
    DISCORD_API_ROOT: `${discord.apiRoot}/`,
  });
}

beforeAll(async () => {
  await initBackend();
  env = makeCore({ rateLimit: false });
  discord = await startFakeDiscord({ token: TOKEN, heartbeatIntervalMs: 300 });
  adapter = await startDiscord(config(), env.core, pino({ level: 'silent' }));
  await env.store.users.upsert('discord', { id: PROF.id, name: 'Prof' });
  await env.store.users.setRole({ platform: 'discord', userId: PROF.id }, 'instructor');
});

afterAll(async () => {
  await adapter.stop();
  await discord.close();
  await env.registry.dispose();
});

const callbackOf = (token: string) => (r: RecordedRequest) =>
  r.method === 'POST' && r.route.includes(`/${token}/callback`);

type Row = { components: { custom_id: string; label: string }[] };

describe('confirm or correct on Discord', () => {
  let interactionId: string;
  let messageId: string;

  it('puts ✓ and the digits 0-9 as buttons under a /predict answer', async () => {
    const attachment = discord.hostFile('7.png', await readImg('7.png'), 'image/png');
    const { id, token } = discord.slashCommand({
      name: 'predict',
      attachments: { image: attachment },
    });
    interactionId = id;
    const edit = await discord.waitForRequest(
      (r) => r.method === 'PATCH' && r.route.includes(`/${token}/messages/`),
    );
    const body = edit.body as { content: string; components: Row[] };
    expect(body.content).toMatch(/^lenet-mnist: 7 /);
    const buttons = body.components.flatMap((row) => row.components);
    expect(buttons.map((b) => b.label)).toEqual(['✓ right', ...'0123456789']);
    expect(buttons.map((b) => b.custom_id)).toEqual([
      `l:${id}:y`,
      ...[...'0123456789'].map((d) => `l:${id}:${d}`),
    ]);
    expect(body.components.every((row) => row.components.length <= 5)).toBe(true);
    messageId = discord.originalOf(token)!;
    expect(discord.botMessage(messageId)?.components).toHaveLength(3);
  });

  it('refuses another student with a message only they see, and keeps the buttons', async () => {
    const { token } = discord.pressButton({
      messageId,
      customId: `l:${interactionId}:3`,
      user: BORIS,
    });
    const callback = await discord.waitForRequest(callbackOf(token));
    expect(callback.body).toMatchObject({
      type: 4,
      data: {
        content: 'This is not your photo: only its author or an instructor can label it.',
        flags: 64,
      },
    });
    expect(env.store.classData.labels).toEqual([]);
    expect((discord.botMessage(messageId)?.components as unknown[]).length).toBe(3);
  });

  it("writes one corrected label for the owner's digit, then removes the buttons with a note", async () => {
    const { token } = discord.pressButton({
      messageId,
      customId: `l:${interactionId}:2`,
      user: STUDENT,
    });
    const callback = await discord.waitForRequest(callbackOf(token));
    expect(callback.body).toMatchObject({
      type: 4,
      data: { content: 'Saved: 2. Thank you!', flags: 64 },
    });
    const edit = await discord.waitForRequest(
      (r) => r.method === 'PATCH' && r.route.endsWith(`/${token}/messages/${messageId}`),
    );
    expect(edit.status).toBe(200);
    expect(discord.botMessage(messageId)?.components).toEqual([]);
    expect(discord.botMessage(messageId)?.content).toMatch(/\n\n✎ Ann corrected: it is 2$/);
    expect(env.store.classData.labels).toEqual([
      expect.objectContaining({ label: '2', role: 'student', source: 'corrected' }),
    ]);
  });

  it("serves an old message's buttons after a restart, and an instructor's /label wins", async () => {
    const attachment = discord.hostFile('3.png', await readImg('3.png'), 'image/png');
    const predict = discord.slashCommand({ name: 'predict', attachments: { image: attachment } });
    await discord.waitForRequest(
      (r) => r.method === 'PATCH' && r.route.includes(`/${predict.token}/messages/`),
    );
    const oldMessage = discord.originalOf(predict.token)!;
    await expect
      .poll(() => env.store.submissions.rows.some((r) => r.messageId === predict.id))
      .toBe(true);
    await adapter.stop();
    adapter = await startDiscord(config(), env.core, pino({ level: 'silent' }));

    const press = discord.pressButton({ messageId: oldMessage, customId: `l:${predict.id}:y` });
    const callback = await discord.waitForRequest(callbackOf(press.token));
    expect(callback.body).toMatchObject({
      type: 4,
      data: { content: 'Saved: 3. Thank you!', flags: 64 },
    });
    expect(env.store.classData.labels.at(-1)).toMatchObject({ label: '3', source: 'confirmed' });

    const row = env.store.submissions.rows.find((r) => r.messageId === predict.id)!;
    const { token } = discord.slashCommand({
      name: 'label',
      strings: { label: '8', submission: `#${row.id}` },
      user: PROF,
    });
    const edit = await discord.waitForRequest(
      (r) => r.method === 'PATCH' && r.route.includes(`/${token}/messages/`),
    );
    expect((edit.body as { content: string }).content).toBe('✎ Prof (instructor) labelled: 8');
    expect(env.store.classData.labels.at(-1)).toMatchObject({
      submissionId: row.id,
      label: '8',
      source: 'instructor',
    });
  });
});
