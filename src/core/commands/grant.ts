import { parseUserTarget, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { hasRole } from '../roles.ts';

/**
 * `/grant <user> instructor`: an admin makes someone an instructor on this platform. The user is
 * named by replying to their message, mentioning them, or by their numeric id; they need not
 * have written to the bot yet.
 */
export default {
  name: 'grant',
  description: {
    en: 'give a user the instructor role (reply, mention or id)',
    ru: 'дать пользователю роль преподавателя (ответом, упоминанием или по id)',
  },
  usage: {
    en: '<user> instructor (reply, mention or id)',
    ru: '<пользователь> instructor (ответом, упоминанием или id)',
  },
  options: [
    {
      name: 'user',
      type: 'string',
      required: true,
      description: { en: 'the user (mention or id)', ru: 'пользователь (упоминание или id)' },
    },
    {
      name: 'role',
      type: 'string',
      required: true,
      description: { en: 'instructor', ru: 'instructor (преподаватель)' },
    },
  ],
  role: 'admin',
  async execute(ctx, services) {
    const { target, rest } = unwrap(parseUserTarget(ctx.args, ctx));
    const usage = ctx.t('grant.usage');
    if (rest.length !== 1 || rest[0]?.toLowerCase() !== 'instructor') {
      const value = rest.join(' ') || ctx.args;
      throw new UserError('argument.invalid', `grant what? "${value}"`, { value, usage });
    }
    const key = { platform: ctx.platform, userId: target.userId };
    const before = await services.users.find(key);
    const name = before?.name ?? target.name ?? target.userId;
    const user = ctx.literal?.(name) ?? name;
    if (before && hasRole(before.role, 'instructor')) {
      await ctx.reply(ctx.t('grant.already', { user, role: ctx.t(`role.name.${before.role}`) }));
      return;
    }
    await services.users.setRole(key, 'instructor');
    services.logger.info(
      { platform: ctx.platform, by: ctx.user.id, user: target.userId, role: 'instructor' },
      'role granted',
    );
    await ctx.reply(ctx.t('grant.done', { user }));
  },
} satisfies Command;
