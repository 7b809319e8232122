import { splitArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { trainingOf } from './retrain.ts';

/**
 * `/rollback <model> [version]`: serves an earlier version (default: the one before the served
 * one). Every bot process switches within seconds.
 */
export default {
  name: 'rollback',
  description: {
    en: 'serve an earlier version of a model',
    ru: 'вернуть более раннюю версию модели',
  },
  usage: { en: '<model> [version]', ru: '<модель> [версия]' },
  example: '/rollback lenet-mnist 2',
  options: [
    {
      name: 'model',
      type: 'string',
      required: true,
      description: { en: 'model id', ru: 'модель' },
    },
    {
      name: 'version',
      type: 'string',
      description: {
        en: 'version (default: the previous one)',
        ru: 'версия (по умолчанию предыдущая)',
      },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const words = splitArgs(ctx.args);
    const model = words[0]?.toLowerCase();
    const version = words[1]?.replace(/^v/i, '');
    if (model === undefined || words.length > 2) {
      throw new UserError('argument.invalid', 'usage', {
        value: ctx.args || '∅',
        usage: ctx.t('rollback.usage'),
      });
    }
    const { from, to } = await trainingOf(services).rollback(model, version);
    if (from === to) {
      await ctx.reply(
        version === undefined
          ? ctx.t('rollback.nothing', { model })
          : ctx.t('rollback.same', { model, version: to }),
      );
      return;
    }
    services.logger.info(
      { model, from, to, by: `${ctx.platform}:${ctx.user.id}` },
      'model rolled back',
    );
    await ctx.reply(ctx.t('rollback.done', { model, version: to, previous: from }));
  },
} satisfies Command;
