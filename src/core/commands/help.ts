import type { Command } from '../command.ts';
import { hasRole } from '../roles.ts';

/**
 * `/help`: the commands the user may run, each with its arguments and description, and for
 * commands that take arguments one example, in the user's language: students see theirs;
 * instructors and admins also see theirs, under a heading of their own.
 */
export default {
  name: 'help',
  description: { en: 'list the commands', ru: 'список команд' },
  async execute(ctx) {
    const entry = (c: Command): string[] => {
      const usage = c.usage ? ` ${c.usage[ctx.lang]}` : '';
      const line = `/${c.name}${usage}: ${c.description[ctx.lang]}`;
      return c.example ? [line, `   ${ctx.t('help.example')}: ${c.example}`] : [line];
    };
    const everyone = ctx.commands.filter((c) => (c.role ?? 'student') === 'student');
    const lines = [ctx.t('help.header'), ...everyone.flatMap(entry)];
    for (const role of ['instructor', 'admin'] as const) {
      const theirs = ctx.commands.filter((c) => c.role === role);
      if (theirs.length === 0 || !hasRole(ctx.storedUser.role, role)) continue;
      lines.push('', ctx.t(role === 'admin' ? 'help.admin_header' : 'help.instructor_header'));
      lines.push(...theirs.flatMap(entry));
    }
    await ctx.reply([...lines, '', ctx.t('help.footer')].join('\n'));
  },
} satisfies Command;
