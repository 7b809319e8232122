/** The Discord adapter's pure parts and its entry in the adapter list, without a gateway. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployCommands } from '../../src/adapters/discord/deploy.ts';
import { splitMessage } from '../../src/adapters/discord/message-text.ts';
import { buildSlashCommands } from '../../src/adapters/discord/slash-commands.ts';
import { startDiscord } from '../../src/adapters/discord/start.ts';
import { ADAPTERS } from '../../src/adapters/index.ts';
import { loadConfig } from '../../src/config.ts';
import { commands, type Command } from '../../src/core/index.ts';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord-server.ts';
import { makeCore } from '../unit/core/helpers.ts';

const TOKEN = 'MTAwMDAx.fake-discord-token.ZGVwbG95';

describe('buildSlashCommands', () => {
  it('registers every core command, localized, with attachment options for images', () => {
    const data = buildSlashCommands(commands);
    expect(data.map((c) => c.name)).toEqual(commands.map((c) => c.name));
    for (const c of data) {
      expect(c.description.length).toBeLessThanOrEqual(100);
      expect(c.description_localizations?.ru).toBeTruthy();
      expect(c.name_localizations?.ru).toMatch(/^[а-яё_-]{1,32}$/);
    }
    expect(data.find((c) => c.name === 'predict')?.options).toEqual([
      expect.objectContaining({ name: 'image', type: 11, required: true }),
      expect.objectContaining({ name: 'model', type: 3, required: false }),
    ]);
  });

  it('registers /arch with an optional model option and /compare, named in Russian', () => {
    const data = buildSlashCommands(commands);
    const arch = data.find((c) => c.name === 'arch');
    expect(arch?.name_localizations).toEqual({ ru: 'архитектура' });
    expect(arch?.options).toEqual([
      expect.objectContaining({ name: 'model', type: 3, required: false }),
    ]);
    const compare = data.find((c) => c.name === 'compare');
    expect(compare?.name_localizations).toEqual({ ru: 'сравнить' });
    expect(compare?.options ?? []).toEqual([]);
  });

  it('puts required options first and shortens long descriptions to Discord’s limit', () => {
    const long = 'x'.repeat(150);
    const command: Command = {
      name: 'unnamed-in-russian',
      description: { en: long, ru: long },
      options: [
        { name: 'class', type: 'string', description: { en: 'class', ru: 'класс' } },
        {
          name: 'image',
          type: 'image',
          required: true,
          description: { en: 'photo', ru: 'фото' },
        },
      ],
      execute: () => Promise.resolve(),
    };
    const [data] = buildSlashCommands([command]);
    expect(data?.options?.map((o) => o.name)).toEqual(['image', 'class']);
    expect(data?.description).toHaveLength(100);
    expect(data?.description.endsWith('…')).toBe(true);
    // No Russian name known for this command: Russian clients see the English one.
    expect(data?.name_localizations).toEqual({});
  });
});

describe('splitMessage', () => {
  it('keeps short texts whole and splits long ones at line breaks within 2000 characters', () => {
    expect(splitMessage('hello')).toEqual(['hello']);
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${'-'.repeat(10)}`);
    const parts = splitMessage(lines.join('\n'));
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.length <= 2000)).toBe(true);
    expect(parts.join('\n')).toBe(lines.join('\n'));
    expect(splitMessage('y'.repeat(4500)).map((p) => p.length)).toEqual([2000, 2000, 500]);
  });
});

describe('the discord entry of the adapter list', () => {
  const entry = ADAPTERS.find((a) => a.name === 'discord')!;

  it('is enabled by the Discord variables only', () => {
    expect(entry.enabled(loadConfig({}))).toBe(false);
    expect(
      entry.enabled(loadConfig({ DISCORD_TOKEN: TOKEN, DISCORD_APPLICATION_ID: '1234567890' })),
    ).toBe(true);
  });

  it('refuses to start with the token but no application id, naming the variable', async () => {
    const { core, registry } = makeCore();
    await expect(
      startDiscord(loadConfig({ DISCORD_TOKEN: TOKEN }), core, pino({ level: 'silent' })),
    ).rejects.toThrow(/DISCORD_APPLICATION_ID/);
    await registry.dispose();
  });
});

describe('deployCommands', () => {
  let discord: FakeDiscord;
  beforeAll(async () => {
    discord = await startFakeDiscord({ token: TOKEN });
  });
  afterAll(() => discord.close());

  it('registers the commands in one guild when given its id', async () => {
    const result = await deployCommands({
      token: TOKEN,
      applicationId: discord.applicationId,
      guildId: discord.guildId,
      apiRoot: discord.apiRoot,
      commands,
    });
    expect(result).toEqual({ scope: 'guild', names: commands.map((c) => c.name) });
    const put = discord.requests.at(-1);
    expect(put?.method).toBe('PUT');
    expect(put?.route).toBe(
      `/applications/${discord.applicationId}/guilds/${discord.guildId}/commands`,
    );
  });

  it('fails with Discord’s error on a wrong token', async () => {
    await expect(
      deployCommands({
        token: 'wrong',
        applicationId: discord.applicationId,
        apiRoot: discord.apiRoot,
        commands,
      }),
    ).rejects.toThrow(/401|Unauthorized/);
  });
});
