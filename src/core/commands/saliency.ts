import { SMOOTH_GRAD_DEFAULTS } from '../../explain/saliency.ts';
import { unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { parseExplainArgs, runExplanation } from '../explanation-reply.ts';

/**
 * `/saliency [model] [smooth]`: the saliency map (gradient of the class score with respect to
 * the pixels; SmoothGrad with `smooth`) of the attached or replied-to photo, as an overlay with
 * an explanation of which parts matter.
 */
export default {
  name: 'saliency',
  description: {
    en: 'saliency map: which pixels change the answer most',
    ru: 'карта значимости: какие пиксели сильнее всего меняют ответ',
  },
  usage: { en: '[model] [smooth] (with a photo)', ru: '[модель] [smooth] (с фото)' },
  example: '/saliency lenet-mnist smooth',
  options: [
    {
      name: 'image',
      type: 'image',
      required: true,
      description: { en: 'a photo', ru: 'фото' },
    },
    {
      name: 'model',
      type: 'string',
      description: { en: 'model id (see /models)', ru: 'модель (см. /models)' },
    },
  ],
  logsSubmission: true,
  async execute(ctx, services) {
    const known = (await services.models.list()).map((m) => m.id);
    const args = unwrap(parseExplainArgs(ctx.args, known, false));
    await runExplanation(ctx, services, args, {
      method: 'saliency',
      ...(args.smooth ? { smoothGrad: SMOOTH_GRAD_DEFAULTS } : {}),
    });
  },
} satisfies Command;
