/**
 * The core's commands as Discord slash commands: the same names, descriptions in English (the
 * default) and Russian, attachment options for the commands that take an image.
 */
import {
  Locale,
  type ApplicationCommandOptionBase,
  SlashCommandBuilder,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { Command, CommandOption } from '../../core/index.ts';

/** A slash command's registration body (what `PUT /applications/:id/commands` takes). */
export type SlashCommandData = RESTPostAPIChatInputApplicationCommandsJSONBody;

/**
 * Russian names of commands and options, shown in Russian Discord clients (`/распознать`).
 * Discord still sends the default (English) name in the interaction, so routing is unaffected.
 * A command or option missing here keeps its English name in every client.
 */
export const RUSSIAN_NAMES: Readonly<Record<string, string>> = {
  start: 'старт',
  help: 'помощь',
  predict: 'распознать',
  models: 'модели',
  history: 'история',
  lang: 'язык',
  gradcam: 'градкам',
  saliency: 'значимость',
  arch: 'архитектура',
  compare: 'сравнить',
  check: 'проверить',
  submissions: 'сданные',
  task: 'задание',
  image: 'фото',
  class: 'класс',
  method: 'метод',
  model: 'модель',
  language: 'язык',
  // issue 16
  label: 'метка',
  review: 'проверка',
  export: 'экспорт',
  stats: 'статистика',
  submission: 'номер',
  filters: 'фильтры',
  // issue 14
  retrain: 'переобучить',
  jobs: 'задачи',
  cancel: 'отменить',
  versions: 'версии',
  rollback: 'откатить',
  grant: 'выдать',
  revoke: 'отозвать',
  user: 'пользователь',
  role: 'роль',
  job: 'задача',
  version: 'версия',
  params: 'параметры',
  // issue 16
  with: 'данные',
};

/** Discord's limit on command and option descriptions. */
const DESCRIPTION_MAX = 100;

const fit = (s: string): string =>
  s.length <= DESCRIPTION_MAX ? s : `${s.slice(0, DESCRIPTION_MAX - 1).trimEnd()}…`;

function russianName(name: string): Partial<Record<Locale, string>> {
  const ru = RUSSIAN_NAMES[name];
  return ru ? { [Locale.Russian]: ru } : {};
}

/** Required options first: Discord refuses an optional option before a required one. */
function registrationOrder(options: readonly CommandOption[]): CommandOption[] {
  return [...options.filter((o) => o.required), ...options.filter((o) => !o.required)];
}

/** Names and describes an option, in English and Russian. */
function describe<T extends ApplicationCommandOptionBase>(builder: T, option: CommandOption): T {
  return builder
    .setName(option.name)
    .setNameLocalizations(russianName(option.name))
    .setDescription(fit(option.description.en))
    .setDescriptionLocalizations({ [Locale.Russian]: fit(option.description.ru) })
    .setRequired(option.required === true);
}

/**
 * Builds the slash command registrations for the core's commands: names as the core has them,
 * English descriptions with Russian localizations, a string option per `string` option and an
 * attachment option per `image` option (`/predict image: model:`).
 *
 * @example
 * await rest.put(Routes.applicationCommands(appId), { body: buildSlashCommands(core.commands) });
 */
export function buildSlashCommands(commands: readonly Command[]): SlashCommandData[] {
  return commands.map((command) => {
    const builder = new SlashCommandBuilder()
      .setName(command.name)
      .setNameLocalizations(russianName(command.name))
      .setDescription(fit(command.description.en))
      .setDescriptionLocalizations({ [Locale.Russian]: fit(command.description.ru) });
    for (const option of registrationOrder(command.options ?? [])) {
      if (option.type === 'image') builder.addAttachmentOption((o) => describe(o, option));
      else builder.addStringOption((o) => describe(o, option));
    }
    return builder.toJSON();
  });
}
