import { UserError } from '../../errors.ts';
import { splitArgs } from '../args.ts';
import { buildClassExport, parseExportFilters, zipClassExport } from '../class-export.ts';
import type { Command } from '../command.ts';
import type { ClassDataFilter } from '../ports.ts';

const USAGE = '/export [chat=here|all] [from=YYYY-MM-DD] [to=YYYY-MM-DD]';

/**
 * issue 16: `/export` (instructors) sends a zip: the labelled photos in folders `0/`..`9/` and
 * `submissions.csv` of every submission. In a group it covers that chat unless `chat=all`; in a
 * private chat every chat unless `chat=here`.
 */
export default {
  name: 'export',
  description: {
    en: 'instructors: the labelled photos and submissions as a zip',
    ru: 'преподавателям: размеченные фото и все отправки в zip-архиве',
  },
  usage: {
    en: '[chat=here|all] [from=YYYY-MM-DD] [to=YYYY-MM-DD]',
    ru: '[chat=here|all] [from=ГГГГ-ММ-ДД] [to=ГГГГ-ММ-ДД]',
  },
  options: [
    {
      name: 'filters',
      type: 'string',
      description: {
        en: 'chat=here|all from=YYYY-MM-DD to=YYYY-MM-DD',
        ru: 'chat=here|all from=ГГГГ-ММ-ДД to=ГГГГ-ММ-ДД',
      },
    },
  ],
  role: 'instructor',
  async execute(ctx, services) {
    const f = parseExportFilters(splitArgs(ctx.args));
    if (f.rest.length > 0 || (f.chat !== undefined && f.chat !== 'here' && f.chat !== 'all')) {
      throw new UserError('argument.invalid', `cannot parse "${ctx.args}"`, {
        value: f.rest.join(' ') || (f.chat ?? ''),
        usage: USAGE,
      });
    }
    if (!ctx.replyFile) throw new UserError('export.no_files', `${ctx.platform} has no files`);
    const here = (f.chat ?? (ctx.chat.type === 'group' ? 'here' : 'all')) === 'here';
    const filter: ClassDataFilter = {
      ...(here ? { platform: ctx.platform, chatId: ctx.chat.id } : {}),
      ...(f.from ? { from: f.from } : {}),
      ...(f.to ? { to: f.to } : {}),
    };
    ctx.showAction('typing');
    const x = await buildClassExport(services.classData, filter);
    const day = new Date().toISOString().slice(0, 10);
    await ctx.replyFile(
      zipClassExport(x),
      `class-${day}.zip`,
      ctx.t('export.caption', { photos: x.photos, rows: x.rows }),
    );
  },
} satisfies Command;
