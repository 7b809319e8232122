import type { Command } from '../command.ts';

/**
 * `/help`: every command with its arguments and description, and for commands that take
 * arguments one example, in the user's language.
 */
export default {
  name: 'help',
  description: { en: 'list the commands', ru: 'список команд' },
  async execute(ctx) {
    const lines = ctx.commands.flatMap((c) => {
      const usage = c.usage ? ` ${c.usage[ctx.lang]}` : '';
      const line = `/${c.name}${usage}: ${c.description[ctx.lang]}`;
      return c.example ? [line, `   ${ctx.t('help.example')}: ${c.example}`] : [line];
    });
    await ctx.reply([ctx.t('help.header'), ...lines, '', ctx.t('help.footer')].join('\n'));
  },
} satisfies Command;
