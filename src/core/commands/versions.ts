import { splitArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { formatBytes } from '../i18n.ts';
import { versionLine } from '../training.ts';
import { trainingOf } from './retrain.ts';

/**
 * `/versions <model>`: the model's versions (accuracy, when, who, parameters, which is served).
 * `/versions <model> prune N` (Discord: the `prune` option, N alone): deletes all but the newest
 * N trained versions, never version 0, the served one or the one `/rollback` goes back to, and
 * says what it removed, the bytes freed, and what it kept and why.
 */
export default {
  name: 'versions',
  description: { en: "list a model's versions", ru: 'версии модели' },
  usage: { en: '<model> [prune N]', ru: '<модель> [prune N]' },
  example: '/versions lenet-mnist prune 3',
  options: [
    {
      name: 'model',
      type: 'string',
      required: true,
      description: { en: 'model id', ru: 'модель' },
    },
    {
      name: 'prune',
      type: 'string',
      description: {
        en: 'delete all but the newest N versions (served and rollback ones stay)',
        ru: 'удалить все версии, кроме N новых (текущая и для /rollback остаются)',
      },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const words = splitArgs(ctx.args);
    const model = words[0]?.toLowerCase();
    const named = words[1]?.toLowerCase() === 'prune';
    const rest = named ? words.slice(2) : words.slice(1);
    const keep = rest[0];
    if (
      model === undefined ||
      // Deleting takes the word `prune` (`/versions lenet-mnist 2` asks for no deletion); only
      // Discord's `prune` option arrives as the bare number after the model.
      (words.length > 1 && !named && ctx.platform !== 'discord') ||
      rest.length > 1 ||
      (words.length > 1 && (keep === undefined || !/^\d{1,4}$/.test(keep)))
    ) {
      throw new UserError('argument.invalid', 'usage', {
        value: ctx.args || '∅',
        usage: ctx.t('versions.usage'),
      });
    }
    const training = trainingOf(services);
    const versions = await training.versions(model);
    if (versions.length === 0) {
      const known = (await services.models.list()).map((m) => m.id).join(', ');
      throw new UserError('model.unknown', `no versions of ${model}`, { model, known });
    }
    if (keep !== undefined && training.prune) {
      const r = await training.prune(model, Number(keep));
      services.logger.info(
        { model, keep: Number(keep), removed: r.removed, by: `${ctx.platform}:${ctx.user.id}` },
        'model versions pruned',
      );
      const kept = r.kept
        .map((k) => `v${k.version} (${ctx.t(`versions.kept.${k.reason}`)})`)
        .join(', ');
      await ctx.reply(
        r.removed.length === 0
          ? ctx.t('versions.pruned_none', { model, kept })
          : ctx.t('versions.pruned', {
              model,
              removed: r.removed.map((v) => `v${v}`).join(', '),
              database: formatBytes(r.dbBytes, ctx.lang),
              disk: formatBytes(r.diskBytes, ctx.lang),
              kept,
            }),
      );
      return;
    }
    await ctx.reply(
      [
        ctx.t('versions.header', { model }),
        ...versions.map((v) => versionLine(v, ctx.t, ctx.lang, ctx.literal)),
      ].join('\n'),
    );
  },
} satisfies Command;
