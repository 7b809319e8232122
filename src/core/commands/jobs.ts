import type { Command } from '../command.ts';
import { jobLine } from '../training.ts';
import { trainingOf } from './retrain.ts';

/** `/jobs`: queued, running and recent training jobs (state, progress, who asked, duration). */
export default {
  name: 'jobs',
  description: { en: 'list training jobs', ru: 'задачи обучения' },
  role: 'instructor',
  async execute(ctx, services) {
    const jobs = await trainingOf(services).list();
    if (jobs.length === 0) {
      await ctx.reply(ctx.t('jobs.none'));
      return;
    }
    await ctx.reply(
      [
        ctx.t('jobs.header'),
        ...jobs.map((j) => jobLine(j, ctx.t, ctx.lang, Date.now(), ctx.literal)),
      ].join('\n'),
    );
  },
} satisfies Command;
