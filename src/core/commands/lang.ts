import { parseLangArgs, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { clientLanguage, translator } from '../i18n.ts';

/** `/lang [ru|en|auto]`: shows or sets the reply language. */
export default {
  name: 'lang',
  description: { en: 'reply language: ru, en or auto', ru: 'язык ответов: ru, en или auto' },
  usage: { en: '[ru|en|auto]', ru: '[ru|en|auto]' },
  example: '/lang ru',
  options: [
    {
      name: 'language',
      type: 'string',
      description: { en: 'ru, en or auto', ru: 'ru, en или auto' },
    },
  ],
  async execute(ctx, services) {
    const args = unwrap(parseLangArgs(ctx.args));
    const user = { platform: ctx.platform, userId: ctx.user.id };
    switch (args.action) {
      case 'show':
        await ctx.reply(ctx.t('lang.current', { language: ctx.t(`lang.name.${ctx.lang}`) }));
        return;
      case 'set':
        await services.users.setLanguage(user, args.language);
        // Confirmed in the new language: that is the proof it worked.
        await ctx.reply(translator(args.language)('lang.set'));
        return;
      case 'auto':
        await services.users.setLanguage(user, null);
        await ctx.reply(translator(clientLanguage(ctx.user.languageCode))('lang.auto'));
        return;
    }
  },
} satisfies Command;
