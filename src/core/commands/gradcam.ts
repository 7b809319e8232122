import { unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { parseExplainArgs, runExplanation } from '../explanation-reply.ts';

/**
 * `/gradcam [model] [class] [method]`: Grad-CAM (or Grad-CAM++) of the attached or replied-to
 * photo, for the top prediction or the class given, as an overlay with an explanation of which
 * parts matter.
 */
export default {
  name: 'gradcam',
  description: {
    en: 'Grad-CAM: which parts of the photo the network looked at',
    ru: 'Grad-CAM: на какие части фото смотрела сеть',
  },
  usage: {
    en: '[model] [class] [gradcam|gradcam++] (with a photo)',
    ru: '[модель] [класс] [gradcam|gradcam++] (с фото)',
  },
  example: '/gradcam lenet-mnist 3 gradcam++',
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
    {
      name: 'class',
      type: 'string',
      description: {
        en: 'class index or name (default: the answer)',
        ru: 'номер или имя класса (по умолчанию — ответ)',
      },
    },
    {
      name: 'method',
      type: 'string',
      description: { en: 'gradcam or gradcam++', ru: 'gradcam или gradcam++' },
    },
  ],
  logsSubmission: true,
  async execute(ctx, services) {
    const known = (await services.models.list()).map((m) => m.id);
    const args = unwrap(parseExplainArgs(ctx.args, known, true));
    await runExplanation(ctx, services, args, { method: args.method ?? 'gradcam' });
  },
} satisfies Command;
