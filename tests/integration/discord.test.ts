/**
 * The Discord adapter end to end: the real core and the real discord.js, against a fake Discord
 * (REST API + gateway) on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { GatewayIntentBits } from 'discord.js';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord } from '../../src/adapters/discord/start.ts';
import type { RunningAdapter } from '../../src/adapters/index.ts';
import { loadConfig, PROJECT_ROOT } from '../../src/config.ts';
import en from '../../src/core/locales/en.json' with { type: 'json' };
import ru from '../../src/core/locales/ru.json' with { type: 'json' };
import type { SubmissionInput } from '../../src/core/index.ts';
import { initBackend } from '../../src/ml/backend.ts';
import {
  startFakeDiscord,
  STUDENT,
  type FakeDiscord,
  type RecordedRequest,
} from '../fakes/discord-server.ts';
import { isPng, makeCore, photoFor, readImg } from '../unit/core/helpers.ts';

const TOKEN = 'MTAwMDAw.fake-discord-token.c2VjcmV0LXRlc3Q';

let env: ReturnType<typeof makeCore>;
let discord: FakeDiscord;
let adapter: RunningAdapter;
const logLines: string[] = [];

beforeAll(async () => {
  await initBackend();
  env = makeCore({ rateLimit: false });
  discord = await startFakeDiscord({ token: TOKEN, heartbeatIntervalMs: 300 });
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const config = loadConfig({
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: discord.applicationId,
    DISCORD_API_ROOT: `${discord.apiRoot}/`,
  });
  adapter = await startDiscord(config, env.core, pino({ level: 'trace' }, logStream));
});

afterAll(async () => {
  await adapter.stop();
  await discord.close();
  await env.registry.dispose();
});

/** The edit of an interaction's deferred response. */
const editOf =
  (token: string) =>
  (r: RecordedRequest): boolean =>
    r.method === 'PATCH' && r.route.includes(`/${token}/messages/`);

/** The body's `content`. */
const content = (r: RecordedRequest): string => (r.body as { content?: string }).content ?? '';

/** The submission row of a message or interaction (recorded just after the reply is sent). */
async function rowOf(messageId: string): Promise<SubmissionInput> {
  await expect
    .poll(() => env.store.submissions.rows.find((r) => r.messageId === messageId))
    .toBeDefined();
  return env.store.submissions.rows.find((r) => r.messageId === messageId)!;
}

/** Sends `/predict` with a file attached, returns the edit of its deferred response. */
async function predict(
  file: { name: string; bytes: Uint8Array; type?: string },
  extra: { locale?: string; model?: string } = {},
): Promise<{ id: string; token: string; edit: RecordedRequest }> {
  const attachment = discord.hostFile(file.name, file.bytes, file.type);
  const { id, token } = discord.slashCommand({
    name: 'predict',
    attachments: { image: attachment },
    ...(extra.model ? { strings: { model: extra.model } } : {}),
    ...(extra.locale ? { locale: extra.locale } : {}),
  });
  const edit = await discord.waitForRequest(editOf(token));
  return { id, token, edit };
}

describe('the Discord adapter against a fake Discord', () => {
  it('logs in through the gateway named by DISCORD_API_ROOT, without privileged intents', async () => {
    const gatewayBot = discord.requests.find((r) => r.route === '/gateway/bot');
    expect(gatewayBot?.authorization).toBe(`Bot ${TOKEN}`);
    expect(discord.gateway.connectQueries).toEqual(['v=10&encoding=json']);
    const intents = discord.gateway.identifies[0]?.intents as number;
    expect(intents).toBe(
      GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.DirectMessages,
    );
    expect(intents & GatewayIntentBits.MessageContent).toBe(0);
    await expect.poll(() => discord.gateway.heartbeats, { timeout: 5_000 }).toBeGreaterThan(0);
  });

  it('answers /predict image: with a deferred response, then the chart and the digit', async () => {
    const { id, token, edit } = await predict({
      name: '7.png',
      bytes: await readImg('7.png'),
      type: 'image/png',
    });
    const callback = discord.requests.find((r) => r.route.includes(`/${token}/callback`));
    expect(callback?.body).toEqual({ type: 5, data: { flags: 0 } });
    expect(callback?.status).toBe(204);
    expect(discord.requests.indexOf(callback!)).toBeLessThan(discord.requests.indexOf(edit));
    expect(edit.status).toBe(200);
    expect(edit.contentType).toMatch(/^multipart\/form-data/);
    expect(content(edit)).toMatch(/^lenet-mnist: 7 \(/);
    expect(content(edit)).toContain('Top 3: 7 ');
    expect(edit.files).toHaveLength(1);
    expect(edit.files[0]?.field).toBe('files[0]');
    expect(edit.files[0]?.name).toBe('chart.png');
    expect(isPng(edit.files[0]!.bytes)).toBe(true);
    expect(await rowOf(id)).toEqual(
      expect.objectContaining({
        platform: 'discord',
        userId: STUDENT.id,
        chatId: discord.channelId,
        messageId: id,
        command: 'predict',
        predictedClass: '7',
        errorCode: null,
      }),
    );
  });

  it('answers /gradcam image: method: with a deferred response, then the overlay and its explanation', async () => {
    const attachment = discord.hostFile('3.png', await readImg('3.png'), 'image/png');
    const { token } = discord.slashCommand({
      name: 'gradcam',
      attachments: { image: attachment },
      strings: { method: 'gradcam++' },
    });
    const edit = await discord.waitForRequest(editOf(token));
    const callback = discord.requests.find((r) => r.route.includes(`/${token}/callback`));
    expect(callback?.body).toEqual({ type: 5, data: { flags: 0 } });
    expect(discord.requests.indexOf(callback!)).toBeLessThan(discord.requests.indexOf(edit));
    expect(content(edit)).toMatch(/^lenet-mnist: 3 .*Grad-CAM\+\+/);
    expect(content(edit)).toContain('Where the heat is');
    expect(edit.files).toHaveLength(1);
    expect(isPng(edit.files[0]!.bytes)).toBe(true);
  });

  it('passes string options as the arguments: /predict model: with an unknown model', async () => {
    const { edit } = await predict(
      { name: '7.png', bytes: await readImg('7.png') },
      { model: 'resnet-99' },
    );
    expect(content(edit)).toBe(
      en['error.model.unknown']
        .replace('{{model}}', 'resnet-99')
        .replace('{{known}}', (await env.registry.list()).map((m) => m.id).join(', ')),
    );
  });

  it('replies to a message that mentions the bot with an image', async () => {
    const attachment = discord.hostFile('3.png', await readImg('3.png'), 'image/png');
    const id = discord.message({
      content: `<@${discord.bot.id}> what is this?`,
      mentions: [discord.bot],
      attachments: [attachment],
    });
    const reply = await discord.waitForRequest(
      (r) =>
        r.route === `/channels/${discord.channelId}/messages` &&
        (r.body as { message_reference?: { message_id?: string } }).message_reference
          ?.message_id === id,
    );
    expect(reply.status).toBe(200);
    expect(reply.authorization).toBe(`Bot ${TOKEN}`);
    expect(content(reply)).toMatch(/^lenet-mnist: 3 \(/);
    expect(isPng(reply.files[0]!.bytes)).toBe(true);
    expect((reply.body as { allowed_mentions?: unknown }).allowed_mentions).toEqual({
      parse: [],
      replied_user: true,
    });
  });

  it('ignores messages that do not mention the bot, answers DMs without one', async () => {
    const photo = await readImg('3.png');
    const ignored = discord.message({
      content: 'a photo for my friends',
      attachments: [discord.hostFile('3.png', photo, 'image/png')],
    });
    const dm = discord.message({
      content: '',
      attachments: [discord.hostFile('3.png', photo, 'image/png')],
      dm: true,
    });
    const reply = await discord.waitForRequest(
      (r) => r.route === `/channels/${discord.dmChannelId}/messages`,
    );
    expect((reply.body as { message_reference?: unknown }).message_reference).toEqual(
      expect.objectContaining({ message_id: dm }),
    );
    expect(content(reply)).toMatch(/^lenet-mnist: 3 \(/);
    expect(JSON.stringify(discord.requests)).not.toContain(ignored);
    expect(await rowOf(dm)).toEqual(
      expect.objectContaining({ chatId: discord.dmChannelId, predictedClass: '3' }),
    );
  });

  it('rejects a PDF with a localized message', async () => {
    const pdf = new TextEncoder().encode('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n');
    const { id, edit } = await predict({ name: 'digit.pdf', bytes: pdf, type: 'application/pdf' });
    expect(content(edit)).toBe(en['error.image.pdf']);
    expect(edit.files).toEqual([]);
    expect((await rowOf(id)).errorCode).toBe('image.pdf');
  });

  it('rejects an empty file with a localized message', async () => {
    const { id, edit } = await predict({ name: 'empty.png', bytes: new Uint8Array(0) });
    expect(content(edit)).toBe(en['error.image.empty']);
    expect((await rowOf(id)).errorCode).toBe('image.empty');
  });

  it('answers in the interaction locale: a cut-off GIF gets the Russian message', async () => {
    const gif = await sharp(await readImg('7.png'))
      .gif()
      .toBuffer();
    const { id, edit } = await predict(
      { name: '7.gif', bytes: gif.subarray(0, 40), type: 'image/gif' },
      { locale: 'ru' },
    );
    expect(content(edit)).toBe(ru['error.image.truncated']);
    expect((await rowOf(id)).errorCode).toBe('image.truncated');
  });

  it("shows a user's Markdown-looking name and a typed model name literally (escaped)", async () => {
    const start = discord.slashCommand({
      name: 'start',
      user: {
        id: '300000000000000077',
        username: 'a_b_c',
        global_name: 'ivan_petrov_ **x** `c` > q',
      },
    });
    expect(content(await discord.waitForRequest(editOf(start.token)))).toMatch(
      /^Hi, ivan\\_petrov\\_ \\\*\\\*x\\\*\\\* \\`c\\` > q! /,
    );
    const { edit } = await predict(
      { name: '7.png', bytes: await readImg('7.png') },
      { model: 'res_net_' },
    );
    expect(content(edit)).toMatch(/^There is no model “res\\_net\\_”\. /);
  });

  it('answers text commands and removes the response of a command it does not serve', async () => {
    const help = discord.slashCommand({ name: 'help', locale: 'ru' });
    const helpEdit = await discord.waitForRequest(editOf(help.token));
    expect(content(helpEdit)).toContain(ru['help.header']);
    expect(content(helpEdit)).toContain('/predict [модель]');

    const lang = discord.slashCommand({ name: 'lang', strings: { language: 'ru' } });
    expect(content(await discord.waitForRequest(editOf(lang.token)))).toBe(ru['lang.set']);

    const stale = discord.slashCommand({ name: 'retired-command' });
    const removed = await discord.waitForRequest(
      (r) => r.method === 'DELETE' && r.route.includes(`/${stale.token}/messages/`),
    );
    expect(removed.status).toBe(204);
  });

  it('answers /predict model: for every shipped model with one of its class names', async () => {
    const metas = await env.registry.list();
    expect(metas.map((m) => m.id)).toContain('lenet-mnist');
    for (const meta of metas) {
      const { edit } = await predict(
        { name: 'photo.jpg', bytes: await photoFor(meta), type: 'image/jpeg' },
        { model: meta.id },
      );
      expect(edit.status).toBe(200);
      expect(isPng(edit.files[0]!.bytes)).toBe(true);
      const label = new RegExp(`^${meta.id}: (.+?) \\(`).exec(content(edit))?.[1];
      expect(meta.classNames, `${meta.id}: ${content(edit)}`).toContain(label);
    }
  }, 120_000);

  it('answers /arch model: and /compare with a table image and a summary', async () => {
    const arch = discord.slashCommand({ name: 'arch', strings: { model: 'lenet-mnist' } });
    const archEdit = await discord.waitForRequest(editOf(arch.token));
    expect(archEdit.status).toBe(200);
    // In Russian: the student chose it with /lang above.
    expect(content(archEdit)).toMatch(/^lenet-mnist \(lenet, mnist\): параметров 44\s426,/);
    expect(archEdit.files).toHaveLength(1);
    expect(isPng(archEdit.files[0]!.bytes)).toBe(true);

    const compare = discord.slashCommand({ name: 'compare', locale: 'ru' });
    const compareEdit = await discord.waitForRequest(editOf(compare.token));
    expect(content(compareEdit)).toContain('/arch <модель>');
    expect(compareEdit.files).toHaveLength(1);
    expect(isPng(compareEdit.files[0]!.bytes)).toBe(true);
  });

  it('never logs the token and calls no route the fake does not know', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('')).not.toContain(TOKEN);
    expect(discord.unknownRoutes).toEqual([]);
  });
});

describe('npm run deploy-commands against the fake', () => {
  it('PUTs every command with Russian localizations and the image option', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/deploy-commands.ts'],
      {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          DISCORD_TOKEN: TOKEN,
          DISCORD_APPLICATION_ID: discord.applicationId,
          DISCORD_API_ROOT: discord.apiRoot,
          DISCORD_GUILD_ID: '',
        },
      },
    );
    const put = await discord.waitForRequest(
      (r) => r.method === 'PUT' && r.route === `/applications/${discord.applicationId}/commands`,
    );
    expect(put.status).toBe(200);
    expect(put.authorization).toBe(`Bot ${TOKEN}`);
    const body = put.body as {
      name: string;
      name_localizations: Record<string, string>;
      description_localizations: Record<string, string>;
      options?: { name: string; type: number; required: boolean }[];
    }[];
    expect(body.map((c) => c.name)).toEqual(env.core.commands.map((c) => c.name));
    for (const [i, command] of body.entries()) {
      expect(command.description_localizations.ru).toBe(env.core.commands[i]?.description.ru);
    }
    const predict = body.find((c) => c.name === 'predict');
    expect(predict?.name_localizations).toEqual({ ru: 'распознать' });
    expect(predict?.options).toEqual([
      expect.objectContaining({ name: 'image', type: 11, required: true }),
      expect.objectContaining({ name: 'model', type: 3, required: false }),
    ]);
    expect(stdout).toContain(`registered ${body.length} commands globally: /start /help /predict`);
  });
});
