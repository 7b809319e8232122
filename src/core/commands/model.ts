import { parsePredictArgs, splitArgs, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { requireInstructor } from '../labelling.ts';

/**
 * issue 16: `/model` shows the model bare photos are classified with in this chat;
 * `/model <id>` (instructors) sets it for the chat, `/model default` returns to the configured one.
 */
export default {
  name: 'model',
  description: {
    en: "the chat's model for bare photos; instructors: /model <id> sets it",
    ru: 'модель для фото в этом чате; преподавателям: /model <id> меняет её',
  },
  usage: { en: '[model|default]', ru: '[модель|default]' },
  example: '/model digits-photo',
  options: [
    {
      name: 'model',
      type: 'string',
      description: { en: 'model id, or "default"', ru: 'модель или "default"' },
    },
  ],
  async execute(ctx, services) {
    const words = splitArgs(ctx.args);
    if (words.length === 0) {
      const own = ctx.storedChat.defaultModel;
      await ctx.reply(
        ctx.t('model.current', {
          model: own ?? services.defaultModel,
          source: own === null ? ctx.t('model.source_default') : '',
        }),
      );
      return;
    }
    requireInstructor(ctx, 'model');
    if (words.length === 1 && words[0]!.toLowerCase() === 'default') {
      await services.chats.setDefaultModel(ctx.platform, ctx.chat.id, null);
      await ctx.reply(ctx.t('model.cleared', { model: services.defaultModel }));
      return;
    }
    const known = (await services.models.list()).map((m) => m.id);
    const { model } = unwrap(parsePredictArgs(ctx.args, known, '/model [model|default]'));
    await services.chats.setDefaultModel(ctx.platform, ctx.chat.id, model ?? null);
    await ctx.reply(ctx.t('model.set', { model: model ?? services.defaultModel }));
  },
} satisfies Command;
