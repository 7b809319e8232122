import { renderConfusionMatrix } from '../../imaging/confusion.ts';
import { classStats } from '../class-stats.ts';
import type { Command } from '../command.ts';
import { formatPercent } from '../i18n.ts';
import { isDigitModel } from '../labels.ts';
import { classScope } from '../review-queue.ts';

/** Students listed in the text at most (the rest are summed up by the export's CSV). */
const MAX_STUDENTS = 40;

/**
 * issue 16: `/stats` (instructors): photos per student and their share confirmed or corrected,
 * accuracy on the labelled photos by model version, and a confusion matrix image with an
 * example photo in each cell that holds mistakes. In a group: that chat; in private: all.
 */
export default {
  name: 'stats',
  description: {
    en: "instructors: the class's photos, labels and accuracy",
    ru: 'преподавателям: фото класса, метки и точность',
  },
  role: 'instructor',
  async execute(ctx, services) {
    const scope = classScope(ctx);
    const rows = await services.classData.list(scope);
    const digitModel = (await services.models.list()).find(
      (m) => m.id === services.defaultModel && isDigitModel(m),
    );
    const classNames = digitModel?.classNames ?? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    const st = classStats(rows, classNames);
    const pct = (a: number, b: number): string => formatPercent(b === 0 ? 0 : a / b, ctx.lang, 0);
    const lines = [
      ctx.t('stats.title', {
        scope: scope.chatId === undefined ? '' : ctx.t('stats.scope_chat'),
        total: st.total,
        labelled: st.labelled,
      }),
    ];
    if (st.students.length > 0) {
      lines.push('', ctx.t('stats.students_header'));
      for (const s of st.students.slice(0, MAX_STUDENTS)) {
        lines.push(
          ctx.t('stats.student', {
            name: ctx.literal?.(s.name) ?? s.name,
            count: s.photos,
            confirmed: pct(s.confirmed, s.photos),
            corrected: pct(s.corrected, s.photos),
          }),
        );
      }
    }
    if (st.accuracy.length > 0) {
      lines.push('', ctx.t('stats.accuracy_header'));
      for (const a of st.accuracy) {
        lines.push(
          ctx.t('stats.accuracy', {
            model: a.modelId,
            version: a.version,
            accuracy: pct(a.correct, a.total),
            count: a.total,
          }),
        );
      }
    }
    await ctx.reply(lines.join('\n'));
    const inMatrix = st.matrix.flat().reduce((a, b) => a + b, 0);
    if (inMatrix === 0) {
      await ctx.reply(ctx.t('stats.no_labels'));
      return;
    }
    const examples = new Map<string, Uint8Array>();
    for (const [cell, s] of st.examples) {
      if (s.imagePath === null) continue;
      try {
        examples.set(cell, await services.classData.readImage(s.imagePath));
      } catch (e) {
        services.logger.warn({ err: e, submission: s.id }, 'example photo unreadable');
      }
    }
    ctx.showAction('upload_photo');
    const png = await renderConfusionMatrix({
      counts: st.matrix,
      classNames,
      examples,
      title: ctx.t('stats.matrix_title'),
      rowTitle: ctx.lang === 'ru' ? 'верная метка' : 'true label',
      columnTitle: ctx.lang === 'ru' ? 'ответ модели' : 'prediction',
    });
    await ctx.replyImage(png, ctx.t('stats.matrix_caption', { count: inMatrix }));
  },
} satisfies Command;
