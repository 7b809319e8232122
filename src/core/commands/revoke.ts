import { parseUserTarget, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { effectiveRole } from '../roles.ts';

/**
 * `/revoke <user>`: an admin makes an instructor a student again. Admins named in the
 * configuration stay admins (the reply says where to change that).
 */
export default {
  name: 'revoke',
  description: {
    en: 'take the instructor role back (reply, mention or id)',
    ru: 'забрать роль преподавателя (ответом, упоминанием или по id)',
  },
  usage: {
    en: '<user> (reply, mention or id)',
    ru: '<пользователь> (ответом, упоминанием или id)',
  },
  options: [
    {
      name: 'user',
      type: 'string',
      required: true,
      description: { en: 'the user (mention or id)', ru: 'пользователь (упоминание или id)' },
    },
  ],
  role: 'admin',
  async execute(ctx, services) {
    const { target } = unwrap(parseUserTarget(ctx.args, ctx));
    const key = { platform: ctx.platform, userId: target.userId };
    const before = await services.users.find(key);
    const name = before?.name ?? target.name ?? target.userId;
    const user = ctx.literal?.(name) ?? name;
    if (effectiveRole('student', ctx.platform, target.userId, services.admins ?? []) === 'admin') {
      await ctx.reply(ctx.t('revoke.admin', { user }));
      return;
    }
    await services.users.setRole(key, 'student');
    services.logger.info(
      { platform: ctx.platform, by: ctx.user.id, user: target.userId, role: 'student' },
      'role revoked',
    );
    await ctx.reply(ctx.t('revoke.done', { user }));
  },
} satisfies Command;
