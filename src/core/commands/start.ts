import type { Command } from '../command.ts';

/** `/start`: the greeting a platform sends when a user opens the bot. */
export default {
  name: 'start',
  description: { en: 'what this bot does', ru: 'что умеет этот бот' },
  async execute(ctx) {
    // Telegram deep links put a payload after /start: accepted and ignored.
    await ctx.reply(ctx.t('start.text', { name: ctx.literal?.(ctx.user.name) ?? ctx.user.name }));
  },
} satisfies Command;
