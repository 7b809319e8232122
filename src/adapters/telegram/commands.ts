/**
 * The bot's command menu (the "/" button in Telegram clients), from the core's commands.
 */
import type { Api } from 'grammy';
import type { BotCommand } from 'grammy/types';
import { clientLanguage, type Command, type Language } from '../../core/index.ts';

/**
 * Client languages that get a menu of their own: every code the core answers in a language
 * other than English (English is the menu for everyone else).
 */
const MENU_CLIENT_LANGUAGES = ['ru', 'uk', 'be', 'kk'] as const;

/** Telegram's limit on a command description. */
const MAX_DESCRIPTION = 256;

/** The menu in one language. */
export function commandMenu(commands: readonly Command[], lang: Language): BotCommand[] {
  return commands.map((c) => ({
    command: c.name,
    description: c.description[lang].slice(0, MAX_DESCRIPTION),
  }));
}

/**
 * Sets the command menu: English as the default, and the Russian one for clients in the
 * languages the core answers in Russian (Russian, Ukrainian, Belarusian, Kazakh).
 *
 * @example
 * await registerCommands(bot.api, core.commands);
 */
export async function registerCommands(
  api: Pick<Api, 'setMyCommands'>,
  commands: readonly Command[],
): Promise<void> {
  await api.setMyCommands(commandMenu(commands, 'en'));
  for (const code of MENU_CLIENT_LANGUAGES) {
    const lang = clientLanguage(code);
    if (lang === 'en') continue;
    await api.setMyCommands(commandMenu(commands, lang), { language_code: code });
  }
}
