import type { TableInput } from '../../imaging/table.ts';
import { paginateTable, renderTable } from '../../imaging/table.ts';
import type { ArchitectureStats, ModelProfile } from '../../ml/stats.ts';
import { parsePredictArgs, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import {
  formatBytes,
  formatCompact,
  formatMilliseconds,
  formatNumber,
  type Language,
  type Translate,
} from '../i18n.ts';

/** Layers per picture of `/arch`. */
const PAGE_ROWS = 40;

/** A shape without the batch dimension as `24×24×6`. */
export function formatShape(dims: readonly number[]): string {
  return dims.join('×');
}

/** The footnotes of a layer table: parameters and memory, MACs, measured speed. */
export function archNotes(p: ModelProfile, t: Translate, lang: Language): string[] {
  const { stats: s, latency: l } = p;
  return [
    t('arch.note.params', {
      trainable: formatNumber(s.params.trainable, lang),
      nonTrainable: formatNumber(s.params.nonTrainable, lang),
      memory: formatBytes(s.weightBytes, lang),
      disk: formatBytes(p.weightFileBytes, lang),
    }),
    t('arch.note.macs', {
      flops: formatCompact(s.flops, lang),
      activations: formatBytes(s.activationBytes, lang),
    }),
    t('arch.note.speed', {
      backend: l.backend,
      ms: formatMilliseconds(l.msPerImage, lang),
      runs: l.batch1Runs,
      ips: formatNumber(l.imagesPerSecond, lang),
      batch: formatNumber(l.throughputImages, lang),
    }),
  ];
}

/**
 * The columns, rows and totals of a layer table (name, type, output shape, parameters, MACs), for
 * any model's statistics: `/arch` and `/check` (a student's model) draw the same table.
 */
export function layerTableBody(
  s: ArchitectureStats,
  t: Translate,
  lang: Language,
): Pick<TableInput, 'header' | 'align' | 'rows' | 'footerRows'> {
  return {
    header: [
      t('arch.col.layer'),
      t('arch.col.type'),
      t('arch.col.output'),
      t('arch.col.params'),
      t('arch.col.macs'),
    ],
    align: ['left', 'left', 'left', 'right', 'right'],
    rows: s.layers.map((l) => [
      `${'  '.repeat(l.depth)}${l.name}`,
      l.className,
      formatShape(l.outputShape),
      formatNumber(l.trainableParams + l.nonTrainableParams, lang),
      formatNumber(l.macs, lang),
    ]),
    footerRows: [
      [t('arch.total'), '', '', formatNumber(s.params.total, lang), formatNumber(s.macs, lang)],
    ],
  };
}

/**
 * The layer table of a model, as Keras' `model.summary()` lays it out: a row per layer (a
 * nested model's layers indented), output shape, parameters and MACs, totals, and the
 * footnotes. Rendered to PNG by `/arch`, printed as text by the CLI's `arch`.
 */
export function archTable(p: ModelProfile, t: Translate, lang: Language): TableInput {
  const s = p.stats;
  return {
    title: t('arch.title', {
      model: p.meta.id,
      architecture: p.meta.architecture,
      dataset: p.meta.dataset,
      input: formatShape(s.inputShape),
    }),
    ...layerTableBody(s, t, lang),
    footnotes: archNotes(p, t, lang),
  };
}

/** The short text of `/arch`: parameters, MACs and measured speed in one sentence. */
export function archCaption(p: ModelProfile, t: Translate, lang: Language): string {
  return t('arch.caption', {
    model: p.meta.id,
    architecture: p.meta.architecture,
    dataset: p.meta.dataset,
    params: formatNumber(p.stats.params.total, lang),
    macs: formatCompact(p.stats.macs, lang),
    ms: formatMilliseconds(p.latency.msPerImage, lang),
    backend: p.latency.backend,
    ips: formatNumber(p.latency.imagesPerSecond, lang),
    batch: formatNumber(p.latency.throughputImages, lang),
  });
}

/**
 * `/arch [model]`: the model's layer table as an image (type, output shape, parameters and
 * MACs per layer, totals, memory, speed measured on this server; several images of 40 layers for
 * a deep network) and a one-sentence summary. Without an argument, the chat's default model.
 */
export default {
  name: 'arch',
  description: {
    en: 'layers, parameters, MACs and speed of a model',
    ru: 'слои, параметры, MAC и скорость модели',
  },
  usage: { en: '[model]', ru: '[модель]' },
  example: '/arch resnet18-cifar10',
  options: [
    {
      name: 'model',
      type: 'string',
      description: { en: 'model id (see /models)', ru: 'модель (см. /models)' },
    },
  ],
  async execute(ctx, services) {
    const known = (await services.models.list()).map((m) => m.id);
    const args = unwrap(parsePredictArgs(ctx.args, known, ctx.t('arch.usage')));
    const modelId = args.model ?? ctx.storedChat.defaultModel ?? services.defaultModel;
    ctx.showAction('upload_photo');
    const profile = await services.profiler.profile(modelId);
    // A ResNet's hundred layers in one picture would be unreadable on a phone: pages of 40.
    const pages = paginateTable(archTable(profile, ctx.t, ctx.lang), PAGE_ROWS);
    for (const [i, page] of pages.entries()) {
      const caption =
        i === 0 ? archCaption(profile, ctx.t, ctx.lang) : `${modelId} (${i + 1}/${pages.length})`;
      await ctx.replyImage(await renderTable(page), caption);
    }
  },
} satisfies Command;
