import { UserError } from '../../errors.ts';
import { splitArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { labelSubmission } from '../labelling.ts';

const USAGE = '/label <digit> [#submission]';

/**
 * issue 16: `/label <digit>` as a reply to a photo (or with `#<submission id>`): labels the
 * photo. Students label their own photos; instructors any, and their label wins.
 */
export default {
  name: 'label',
  description: {
    en: 'label a photo: reply to it with /label <digit>',
    ru: 'разметить фото: ответьте на него /label <цифра>',
  },
  usage: { en: '<digit> (as a reply to the photo)', ru: '<цифра> (ответом на фото)' },
  example: '/label 7',
  options: [
    {
      name: 'label',
      type: 'string',
      required: true,
      description: { en: 'the right digit', ru: 'верная цифра' },
    },
    {
      name: 'submission',
      type: 'string',
      description: { en: 'submission id (#123)', ru: 'номер фото (#123)' },
    },
  ],
  async execute(ctx, services) {
    const [label, ref, ...rest] = splitArgs(ctx.args);
    if (label === undefined || rest.length > 0 || (ref !== undefined && !/^#?\d+$/.test(ref))) {
      throw new UserError('argument.invalid', `cannot parse "${ctx.args}"`, {
        value: ctx.args || '—',
        usage: USAGE,
      });
    }
    const s =
      ref !== undefined
        ? await services.classData.get(ref.replace(/^#/, ''))
        : ctx.replyToMessageId !== undefined
          ? await services.classData.findByMessage(ctx.platform, ctx.chat.id, ctx.replyToMessageId)
          : undefined;
    if (!s) throw new UserError('label.not_found', `no classified photo for "${ctx.args}"`);
    const { stored, note } = await labelSubmission(ctx, services, s, { label });
    services.logger.debug({ label: stored.id }, 'label command');
    await ctx.reply(note);
  },
} satisfies Command;
