import { afterAll, describe, expect, it } from 'vitest';
import { literalText } from '../../../src/adapters/discord/message-text.ts';
import type { Command } from '../../../src/core/command.ts';
import { literalParams, type Platform } from '../../../src/core/context.ts';
import { UserError } from '../../../src/errors.ts';
import { fakeContext, imageOf, makeCore, readImg } from './helpers.ts';

/**
 * People's names and other user-given text echoed in replies show literally: on Discord (which
 * renders Markdown in every message) through `ChatContext.literal`, on Telegram as they are.
 */
const NAME = 'ivan_petrov_ **x** ~~y~~ ||z|| `c` > q';
const ESCAPED = literalText(NAME);

const envs: ReturnType<typeof makeCore>[] = [];
afterAll(async () => {
  for (const e of envs) await e.registry.dispose();
});

function setup(platform: 'telegram' | 'discord') {
  const env = makeCore({ overrides: { admins: [{ platform, userId: '1' }] } });
  envs.push(env);
  let message = 100;
  const send = async (
    userId: string,
    name: string,
    text: string | undefined,
    extra: Parameters<typeof fakeContext>[0] = {},
  ) => {
    const { ctx, out } = fakeContext({
      platform: platform as Platform,
      ...(platform === 'discord' ? { literal: literalText } : {}),
      user: { id: userId, name, languageCode: 'en' },
      chat: { id: 'c1', type: 'group', title: 'lab' },
      messageId: String(message++),
      ...(text === undefined ? {} : { text }),
      ...extra,
    });
    await env.core.handle(ctx);
    return { ctx, out };
  };
  return { ...env, send };
}

describe.each([
  ['discord', ESCAPED],
  ['telegram', NAME],
] as const)('names in %s replies', (platform, shown) => {
  it('escapes a Markdown-looking name on Discord only (the test name is changed by it)', () => {
    expect(ESCAPED).not.toBe(NAME);
    expect(ESCAPED).toContain('ivan\\_petrov\\_ \\*\\*x\\*\\* \\~\\~y\\~\\~ \\|\\|z\\|\\| \\`c\\`');
  });

  it('/start greets by the name', async () => {
    const { send } = setup(platform);
    const { out } = await send('5', NAME, '/start');
    expect(out.texts[0]).toMatch(new RegExp(`^Hi, ${escapeRegExp(shown)}! `));
  });

  it('/grant and /revoke name the user; a bad argument is echoed', async () => {
    const { send } = setup(platform);
    const grant = await send('1', 'Admin', '/grant instructor', {
      replyTo: { id: '2', name: NAME },
    });
    expect(grant.out.texts).toEqual([`${shown} is now an instructor.`]);
    await send('3', NAME, '/start');
    await send('1', 'Admin', '/grant 3 instructor');
    const again = await send('1', 'Admin', '/grant 3 instructor');
    expect(again.out.texts).toEqual([`${shown} is already instructor.`]);
    const revoke = await send('1', 'Admin', '/revoke 3');
    expect(revoke.out.texts).toEqual([`${shown} is a student again.`]);
    const bad = await send('1', 'Admin', '/grant 2 a_b_c');
    const typed = platform === 'discord' ? 'a\\_b\\_c' : 'a_b_c';
    expect(bad.out.texts[0]).toMatch(new RegExp(`^I don't understand “${escapeRegExp(typed)}”`));
  });

  it("echoes a Keras file's layer and class names in an error reply", async () => {
    const failing: Command = {
      name: 'fail',
      description: { en: 'fails', ru: 'падает' },
      execute() {
        throw new UserError('keras.unsupported_layer', 'unsupported', {
          layer: 'my_layer_',
          className: 'Weird_Layer_',
          supported: 'Conv2D, Dense',
        });
      },
    };
    const env = makeCore({ commands: [failing] });
    envs.push(env);
    const { ctx, out } = fakeContext({
      platform,
      ...(platform === 'discord' ? { literal: literalText } : {}),
      text: '/fail',
    });
    await env.core.handle(ctx);
    expect(out.texts).toEqual([
      platform === 'discord'
        ? 'Layer “my\\_layer\\_” (Weird\\_Layer\\_) is not supported. Supported layers: Conv2D, Dense.'
        : 'Layer “my_layer_” (Weird_Layer_) is not supported. Supported layers: Conv2D, Dense.',
    ]);
  });

  it("/label's note, /stats' student line, /review's caption and its press note", async () => {
    const { send } = setup(platform);
    await send('1', 'Admin', '/grant 9 instructor');
    const photo = await send('5', NAME, '/predict', { image: imageOf(await readImg('7.png')) });
    expect(photo.out.images).toHaveLength(1);
    const label = await send('5', NAME, '/label 3', { replyToMessageId: photo.ctx.messageId });
    expect(label.out.texts).toEqual([`✎ ${shown} corrected: it is 3`]);

    const stats = await send('9', NAME, '/stats');
    expect(stats.out.texts[0]).toContain(`\n${shown}: 1 photo, 0% confirmed, 100% corrected`);

    const review = await send('9', NAME, '/review');
    const caption = review.out.images[0]?.caption ?? '';
    expect(caption).toContain(`, sent by ${shown} on `);
    const notes: string[] = [];
    const id = /^Review #(\d+)/.exec(caption)?.[1];
    await send('9', NAME, undefined, {
      press: {
        data: `r:${id}:a`,
        answer: () => Promise.resolve(),
        finish: (note) => {
          notes.push(note);
          return Promise.resolve();
        },
      },
    });
    expect(notes).toEqual([`✓ ${shown} accepted 3`]);
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('literalParams', () => {
  it('escapes only the named string values and copies the rest', () => {
    const params = { layer: 'conv_1_', className: '*Dense*', units: 8, other: 'a_b' };
    const out = literalParams(params, ['layer', 'className', 'units'], literalText);
    expect(out).toEqual({ layer: 'conv\\_1\\_', className: '\\*Dense\\*', units: 8, other: 'a_b' });
    expect(params.layer).toBe('conv_1_');
  });

  it('without a literal function returns an equal copy', () => {
    const params = { layer: 'conv_1_' };
    const out = literalParams(params, ['layer']);
    expect(out).toEqual(params);
    expect(out).not.toBe(params);
  });
});
