import type { Command } from '../command.ts';
import { errorTitleKey, formatDateTime, formatPercent } from '../i18n.ts';

/** How many submissions `/history` shows. */
export const HISTORY_LENGTH = 5;

/**
 * `/history`: the user's last submissions on this platform, newest first. In a group only those
 * sent in that group: what a student sent the bot privately is not shown to the class.
 */
export default {
  name: 'history',
  description: { en: 'your last submissions', ru: 'ваши последние запросы' },
  async execute(ctx, services) {
    // Messages dropped by the rate limit are logged too, but they are not submissions to show.
    const rows = (
      await services.submissions.listRecent(
        { platform: ctx.platform, userId: ctx.user.id },
        HISTORY_LENGTH * 4,
        ctx.chat.type === 'group' ? { chatId: ctx.chat.id } : {},
      )
    )
      .filter((r) => r.errorCode !== 'rate_limited')
      .slice(0, HISTORY_LENGTH);
    const hasLab =
      (
        (await services.labSubmissions?.listByUser(
          { platform: ctx.platform, userId: ctx.user.id },
          1,
        )) ?? []
      ).length > 0;
    if (rows.length === 0 && !hasLab) {
      await ctx.reply(ctx.t('history.empty'));
      return;
    }
    const lines = rows.map((r) => {
      const date = formatDateTime(r.createdAt, ctx.lang);
      if (r.errorCode !== null || r.predictedClass === null) {
        const error = ctx.t(errorTitleKey(r.errorCode ?? 'internal'));
        return ctx.t('history.failed', { date, command: r.command, error });
      }
      return ctx.t('history.ok', {
        date,
        command: r.command,
        model: r.modelId ?? '',
        label: r.predictedClass,
        confidence: formatPercent(r.confidence ?? 0, ctx.lang),
      });
    });
    const labRows =
      (await services.labSubmissions?.listByUser(
        { platform: ctx.platform, userId: ctx.user.id },
        HISTORY_LENGTH,
      )) ?? [];
    const labLines = labRows.map((r) =>
      ctx.t('lab.history.line', {
        date: formatDateTime(r.createdAt, ctx.lang),
        task: r.task,
        passed: r.passed,
        total: r.total,
        accuracy: r.testAccuracy === null ? '' : `, ${formatPercent(r.testAccuracy, ctx.lang)}`,
      }),
    );
    const lab = labLines.length ? ['', ctx.t('lab.history.header'), ...labLines] : [];
    await ctx.reply([ctx.t('history.header'), ...lines, ...lab].join('\n'));
  },
} satisfies Command;
