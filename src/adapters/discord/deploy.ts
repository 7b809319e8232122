import { REST, Routes } from 'discord.js';
import type { Command } from '../../core/index.ts';
import { buildSlashCommands } from './slash-commands.ts';

/** Options of {@link deployCommands}. */
export interface DeployOptions {
  readonly token: string;
  readonly applicationId: string;
  /** Registers in this guild only (shows up at once; for development) instead of globally. */
  readonly guildId?: string;
  /** Another REST API root instead of `https://discord.com/api` (tests). */
  readonly apiRoot?: string;
  readonly commands: readonly Command[];
}

/** What {@link deployCommands} registered. */
export interface DeployResult {
  readonly scope: 'global' | 'guild';
  /** The command names Discord now has, in order. */
  readonly names: string[];
}

/**
 * Registers the slash commands, replacing the application's previous set (`PUT`, so a command
 * removed from the core disappears from Discord too).
 *
 * @example
 * await deployCommands({ token, applicationId, commands });
 * @throws {DiscordAPIError} when Discord refuses (a wrong token, an invalid command).
 */
export async function deployCommands(options: DeployOptions): Promise<DeployResult> {
  const rest = new REST({ version: '10', ...(options.apiRoot ? { api: options.apiRoot } : {}) });
  rest.setToken(options.token);
  const route = options.guildId
    ? Routes.applicationGuildCommands(options.applicationId, options.guildId)
    : Routes.applicationCommands(options.applicationId);
  try {
    const result = (await rest.put(route, { body: buildSlashCommands(options.commands) })) as {
      name: string;
    }[];
    return { scope: options.guildId ? 'guild' : 'global', names: result.map((c) => c.name) };
  } finally {
    // The REST client's sweeper timers would otherwise keep a script alive.
    rest.clearHashSweeper();
    rest.clearHandlerSweeper();
  }
}
