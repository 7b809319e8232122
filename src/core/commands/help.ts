import type { Command } from '../command.ts';

/** `/help`: every command with its description, in the user's language. */
export default {
  name: 'help',
  description: { en: 'list the commands', ru: 'список команд' },
  async execute(ctx) {
    const lines = ctx.commands.map((c) => `/${c.name}: ${c.description[ctx.lang]}`);
    await ctx.reply([ctx.t('help.header'), ...lines, '', ctx.t('help.footer')].join('\n'));
  },
} satisfies Command;
