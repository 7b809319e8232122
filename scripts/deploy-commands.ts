/**
 * `npm run deploy-commands`: registers the bot's slash commands with Discord (names and
 * descriptions in English and Russian), globally or, with `DISCORD_GUILD_ID`, in one guild.
 * Run it once after creating the bot and again whenever the commands change; `npm start` does not
 * register them. Reads `DISCORD_TOKEN`, `DISCORD_APPLICATION_ID` and optionally `DISCORD_API_ROOT`
 * from the environment or `.env`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { deployCommands } from '../src/adapters/discord/deploy.ts';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { commands } from '../src/core/index.ts';

async function main(): Promise<void> {
  for (const dir of [process.cwd(), PROJECT_ROOT]) {
    const file = path.join(dir, '.env');
    if (existsSync(file)) {
      process.loadEnvFile(file);
      break;
    }
  }
  const config = loadConfig();
  const token = config.DISCORD_TOKEN;
  const applicationId = config.DISCORD_APPLICATION_ID;
  if (token === undefined || applicationId === undefined) {
    throw new Error('set DISCORD_TOKEN and DISCORD_APPLICATION_ID (environment or .env)');
  }
  const result = await deployCommands({
    token,
    applicationId,
    commands,
    ...(config.DISCORD_GUILD_ID ? { guildId: config.DISCORD_GUILD_ID } : {}),
    ...(config.DISCORD_API_ROOT ? { apiRoot: config.DISCORD_API_ROOT } : {}),
  });
  const where = result.scope === 'guild' ? `in guild ${config.DISCORD_GUILD_ID ?? ''}` : 'globally';
  console.log(
    `registered ${result.names.length} commands ${where}: ${result.names.map((n) => `/${n}`).join(' ')}`,
  );
}

main().catch((e: unknown) => {
  console.error(`deploy-commands failed: ${(e as Error).message}`);
  process.exit(1);
});
