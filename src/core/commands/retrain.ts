import { unwrap } from '../args.ts';
import type { Command, CoreServices } from '../command.ts';
import { jobStatusText, parseRetrainArgs, type TrainingService } from '../training.ts';

/** The trainer, or an error where the bot runs without one. */
export function trainingOf(services: CoreServices): TrainingService {
  if (!services.training) throw new Error('no trainer is configured for this bot');
  return services.training;
}

/**
 * `/retrain <model> [with=class] [epochs=N] [lr=X] [batch=N] [force]`: queues a training job (run
 * by a trainer worker in its own process) and answers with the job id and its place in the queue;
 * that answer is then edited with the job's progress and its result. `with=class` (issue 16)
 * fine-tunes the served LeNet digit model on the class's labelled photos instead; with too few of
 * them it is refused at once, naming the count needed.
 */
export default {
  name: 'retrain',
  description: {
    en: "retrain a model: /retrain lenet-mnist epochs=3 lr=0.001 force; with=class: on the class's photos",
    ru: 'переобучить модель: /retrain lenet-mnist epochs=3 lr=0.001 force; with=class: на фото класса',
  },
  usage: {
    en: '<model> [with=class] [epochs=N] [lr=X] [batch=N] [force]',
    ru: '<модель> [with=class] [epochs=N] [lr=X] [batch=N] [force]',
  },
  example: '/retrain lenet-mnist epochs=3',
  options: [
    {
      name: 'model',
      type: 'string',
      required: true,
      description: { en: 'model id, e.g. lenet-mnist', ru: 'модель, например lenet-mnist' },
    },
    {
      // issue 16: Discord sends the value (`class`), which the parser takes as `with=class`
      name: 'with',
      type: 'string',
      description: {
        en: "class: fine-tune on the class's labelled photos",
        ru: 'class: дообучить на размеченных фото класса',
      },
    },
    {
      name: 'params',
      type: 'string',
      description: {
        en: 'epochs=N lr=X batch=N force',
        ru: 'epochs=N lr=X batch=N force',
      },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const training = trainingOf(services);
    const request = unwrap(
      parseRetrainArgs(
        ctx.args,
        await training.trainable(),
        training.limits,
        ctx.t('retrain.usage'),
      ),
    );
    const { job, place } = await training.enqueue(request, {
      platform: ctx.platform,
      userId: ctx.user.id,
      name: ctx.user.name,
    });
    services.logger.info(
      { job: job.id, model: job.modelId, params: job.params, by: `${ctx.platform}:${ctx.user.id}` },
      'training job queued',
    );
    if (!ctx.replyEditable) {
      await ctx.reply(jobStatusText(job, ctx.t, ctx.lang, place, { editable: false }));
      return;
    }
    const sent = await ctx.replyEditable(jobStatusText(job, ctx.t, ctx.lang, place));
    await training.watch(job.id, { platform: ctx.platform, ...sent, lang: ctx.lang });
  },
} satisfies Command;
