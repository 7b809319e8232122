import type { TableInput } from '../../imaging/table.ts';
import { renderTable } from '../../imaging/table.ts';
import type { ModelMeta } from '../../ml/model-meta.ts';
import type { ModelProfile } from '../../ml/stats.ts';
import type { Command } from '../command.ts';
import {
  BYTES_PER_MB,
  formatCompact,
  formatMilliseconds,
  formatNumber,
  formatPercent,
  type Language,
  type Translate,
} from '../i18n.ts';
import { quantizationMarker, quantizationNote } from '../quantization-text.ts';

/** A model of the comparison: its metadata, and its profile unless it could not be loaded. */
export interface ComparedModel {
  readonly meta: ModelMeta;
  readonly profile?: ModelProfile;
}

/** Images in the throughput figure (the same for every profile of a process). */
function batchOf(models: readonly ComparedModel[]): number {
  return models.find((m) => m.profile)?.profile?.latency.throughputImages ?? 1000;
}

/** The backend the profiles were measured on. */
export function backendOf(models: readonly ComparedModel[]): string {
  return models.find((m) => m.profile)?.profile?.latency.backend ?? '—';
}

/**
 * The comparison table: per model its data set, test accuracy (from `meta.json`), parameters,
 * MACs, weight files' size (decimal MB) and measured speed. Quantized weights are marked beside
 * their size (`21.70 (uint8)`) and explained in a footnote with the float32 test accuracy. A
 * model that could not be loaded keeps its metadata's figures and `—` for the rest. Rendered to
 * PNG by `/compare`, printed by the CLI.
 */
export function compareTable(
  models: readonly ComparedModel[],
  t: Translate,
  lang: Language,
): TableInput {
  const dash = '—';
  return {
    title: t('compare.title', { backend: backendOf(models) }),
    header: [
      t('compare.col.model'),
      t('compare.col.dataset'),
      t('compare.col.accuracy'),
      t('compare.col.params'),
      t('compare.col.macs'),
      t('compare.col.weights'),
      t('compare.col.ms'),
      t('compare.col.ips'),
    ],
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    rows: models.map(({ meta, profile: p }) => {
      // A model that could not be loaded still has the size its quantization recorded.
      const bytes = p?.weightFileBytes ?? meta.quantization?.bytes;
      return [
        meta.id,
        meta.dataset,
        meta.testAccuracy === undefined ? dash : formatPercent(meta.testAccuracy, lang, 2),
        p ? formatNumber(p.stats.params.total, lang) : dash,
        p ? formatCompact(p.stats.macs, lang) : dash,
        bytes === undefined
          ? dash
          : `${formatNumber(bytes / BYTES_PER_MB, lang, 2)}${quantizationMarker(meta)}`,
        p ? formatMilliseconds(p.latency.msPerImage, lang) : dash,
        p ? formatNumber(p.latency.imagesPerSecond, lang) : dash,
      ];
    }),
    footnotes: [
      t('compare.note', { batch: formatNumber(batchOf(models), lang) }),
      ...models.flatMap(({ meta }) => quantizationNote(meta, t, lang) ?? []),
    ],
  };
}

/**
 * `/compare`: every installed model side by side, as a table image: data set, test accuracy,
 * parameters, MACs, weight size (quantized weights marked), and speed measured on this server (once per model and process:
 * the first `/compare` takes seconds, the next ones none).
 */
export default {
  name: 'compare',
  description: {
    en: 'compare the models: accuracy, size, MACs, speed',
    ru: 'сравнить модели: точность, размер, MAC, скорость',
  },
  async execute(ctx, services) {
    const metas = await services.models.list();
    if (metas.length === 0) {
      await ctx.reply(ctx.t('models.none'));
      return;
    }
    const { profiler } = services;
    let partial: string | undefined;
    if (profiler.background) {
      // Measuring runs in a lane of its own: answer now with what is measured so far.
      const missing = metas.filter((m) => !profiler.measured(m.id) && !profiler.failed(m.id));
      if (missing.length > 0) {
        for (const m of missing) void profiler.profile(m.id).catch(() => undefined);
        const seconds = profiler.secondsUntilMeasured(missing.map((m) => m.id));
        if (missing.length === metas.length) {
          await ctx.reply(ctx.t('compare.measuring', { count: seconds }));
          return;
        }
        partial = ctx.t('compare.partial', {
          missing: missing.map((m) => m.id).join(', '),
          seconds,
        });
      }
    }
    ctx.showAction('upload_photo');
    const models: ComparedModel[] = [];
    for (const meta of metas) {
      const ready = profiler.measured(meta.id);
      if (partial !== undefined && !ready) {
        models.push({ meta });
        continue;
      }
      try {
        models.push({ meta, profile: await services.profiler.profile(meta.id) });
      } catch (err) {
        // One broken model folder should not hide the others.
        services.logger.warn({ err, model: meta.id }, 'model left out of /compare');
        models.push({ meta });
      }
    }
    const png = await renderTable(compareTable(models, ctx.t, ctx.lang));
    const caption = ctx.t('compare.caption', { count: models.length, backend: backendOf(models) });
    await ctx.replyImage(png, partial === undefined ? caption : `${caption}\n${partial}`);
  },
} satisfies Command;
