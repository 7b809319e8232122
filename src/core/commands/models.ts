import type { Command } from '../command.ts';
import { formatPercent } from '../i18n.ts';

/** `/models`: the installed models with their data set and test accuracy. */
export default {
  name: 'models',
  description: { en: 'the available models', ru: 'доступные модели' },
  async execute(ctx, services) {
    const metas = await services.models.list();
    if (metas.length === 0) {
      await ctx.reply(ctx.t('models.none'));
      return;
    }
    const fallback = ctx.storedChat.defaultModel ?? services.defaultModel;
    const lines = metas.map((m) => {
      const accuracy =
        m.testAccuracy === undefined
          ? ctx.t('models.no_accuracy')
          : formatPercent(m.testAccuracy, ctx.lang, 2);
      const line = ctx.t('models.line', {
        id: m.id,
        architecture: m.architecture,
        dataset: m.dataset,
        accuracy,
      });
      return m.id === fallback ? `${line} ${ctx.t('models.default')}` : line;
    });
    await ctx.reply([ctx.t('models.header'), ...lines].join('\n'));
  },
} satisfies Command;
