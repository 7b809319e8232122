import { splitArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { trainingOf } from './retrain.ts';

/** `/cancel <job>`: cancels a queued job, or stops a running one within seconds. */
export default {
  name: 'cancel',
  description: { en: 'cancel a training job', ru: 'отменить задачу обучения' },
  usage: { en: '<job>', ru: '<задача>' },
  example: '/cancel 12',
  options: [
    {
      name: 'job',
      type: 'string',
      required: true,
      description: { en: 'job id (see /jobs)', ru: 'номер задачи (см. /jobs)' },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const words = splitArgs(ctx.args);
    const id = Number(words[0]?.replace(/^#/, ''));
    if (words.length !== 1 || !Number.isInteger(id) || id < 1) {
      throw new UserError('argument.invalid', `cannot parse "${ctx.args}"`, {
        value: ctx.args || '∅',
        usage: ctx.t('cancel.usage'),
      });
    }
    const training = trainingOf(services);
    const before = await training.get(id);
    if (!before) throw new UserError('job.unknown', `no job ${id}`, { job: id });
    if (before.state !== 'queued' && before.state !== 'running') {
      await ctx.reply(
        ctx.t('cancel.finished', { job: id, state: ctx.t(`job.state.${before.state}`) }),
      );
      return;
    }
    await training.cancel(id);
    services.logger.info(
      { job: id, by: `${ctx.platform}:${ctx.user.id}` },
      'training job cancelled',
    );
    await ctx.reply(ctx.t('cancel.done', { job: id }));
  },
} satisfies Command;
