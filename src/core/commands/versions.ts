import { splitArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { versionLine } from '../training.ts';
import { trainingOf } from './retrain.ts';

/** `/versions <model>`: the model's versions (accuracy, when, who, parameters, which is served). */
export default {
  name: 'versions',
  description: { en: "list a model's versions", ru: 'версии модели' },
  options: [
    {
      name: 'model',
      type: 'string',
      required: true,
      description: { en: 'model id', ru: 'модель' },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const words = splitArgs(ctx.args);
    const model = words[0]?.toLowerCase();
    if (words.length !== 1 || model === undefined) {
      throw new UserError('argument.invalid', 'usage', {
        value: ctx.args || '∅',
        usage: ctx.t('versions.usage'),
      });
    }
    const versions = await trainingOf(services).versions(model);
    if (versions.length === 0) {
      const known = (await services.models.list()).map((m) => m.id).join(', ');
      throw new UserError('model.unknown', `no versions of ${model}`, { model, known });
    }
    await ctx.reply(
      [
        ctx.t('versions.header', { model }),
        ...versions.map((v) => versionLine(v, ctx.t, ctx.lang)),
      ].join('\n'),
    );
  },
} satisfies Command;
