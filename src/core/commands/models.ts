import { renderTable } from '../../imaging/table.ts';
import type { Command } from '../command.ts';
import { formatPercent } from '../i18n.ts';
import { quantizationMarker, quantizationNote, quantizationSummary } from '../quantization-text.ts';

/** Telegram's limit on a photo caption. */
const CAPTION_MAX = 1024;

/**
 * `/models`: the installed models with their data set and test accuracy, as a table image with
 * the same list in words as its caption (or, for a list too long for a caption, as a text after
 * it). A model with quantized weights has its storage type beside its accuracy (the accuracy of
 * those weights) and the float32 accuracy in a footnote and in its line.
 */
export default {
  name: 'models',
  description: { en: 'the available models', ru: 'доступные модели' },
  async execute(ctx, services) {
    const metas = await services.models.list();
    if (metas.length === 0) {
      await ctx.reply(ctx.t('models.none'));
      return;
    }
    const fallback = ctx.storedChat.defaultModel ?? services.defaultModel;
    const accuracyOf = (m: (typeof metas)[number]): string =>
      m.testAccuracy === undefined
        ? ctx.t('models.no_accuracy')
        : formatPercent(m.testAccuracy, ctx.lang, 2);
    const lines = metas.map((m) => {
      const line = ctx.t('models.line', {
        id: m.id,
        architecture: m.architecture,
        dataset: m.dataset,
        accuracy: accuracyOf(m),
      });
      const quantized = quantizationSummary(m, ctx.t, ctx.lang);
      return [line, quantized && `(${quantized})`, m.id === fallback && ctx.t('models.default')]
        .filter(Boolean)
        .join(' ');
    });
    const text = [ctx.t('models.header'), ...lines].join('\n');
    const png = await renderTable({
      title: ctx.t('models.title'),
      header: [
        ctx.t('models.col.id'),
        ctx.t('models.col.architecture'),
        ctx.t('models.col.dataset'),
        ctx.t('models.col.accuracy'),
      ],
      align: ['left', 'left', 'left', 'right'],
      rows: metas.map((m) => [
        m.id === fallback ? `${m.id} *` : m.id,
        m.architecture,
        m.dataset,
        `${accuracyOf(m)}${quantizationMarker(m)}`,
      ]),
      footnotes: [
        ...(metas.some((m) => m.id === fallback) ? [ctx.t('models.default_note')] : []),
        ...metas.flatMap((m) => quantizationNote(m, ctx.t, ctx.lang) ?? []),
      ],
    });
    if (text.length <= CAPTION_MAX) await ctx.replyImage(png, text);
    else {
      await ctx.replyImage(png, ctx.t('models.title'));
      await ctx.reply(text);
    }
  },
} satisfies Command;
