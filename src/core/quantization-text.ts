/**
 * How `/models`, `/compare` and the CLI's `compare` say that a model's weights are stored
 * quantized (`meta.json` `quantization`, written by `src/ml/quantize.ts`): its test accuracy is
 * then that of the quantized weights, so the float32 figure goes beside it.
 */
import type { ModelMeta } from '../ml/model-meta.ts';
import { formatBytes, formatPercent, type Language, type Translate } from './i18n.ts';

/**
 * The mark put after a quantized model's figure in a table cell (weight size, test accuracy):
 * ` (uint8)`, ` (float16)`; `''` for float32 weights.
 * @example
 * `${formatNumber(mb, lang, 2)}${quantizationMarker(meta)}`; // '21.70 (uint8)'
 */
export function quantizationMarker(meta: Pick<ModelMeta, 'quantization'>): string {
  return meta.quantization ? ` (${meta.quantization.dtype})` : '';
}

/**
 * The footnote of a quantized model: its storage type, its float32 size, and the test accuracy
 * of its float32 weights when it was measured; undefined for float32 weights.
 * @example
 * quantizationNote(meta, t, 'en');
 * // 'alexnet-cifar10: weights stored as uint8 (86.5 MB as float32); the test accuracy is that
 * //  of these weights, 78.12% with the float32 ones.'
 */
export function quantizationNote(
  meta: Pick<ModelMeta, 'id' | 'quantization'>,
  t: Translate,
  lang: Language,
): string | undefined {
  const q = meta.quantization;
  if (!q) return undefined;
  const params = {
    model: meta.id,
    dtype: q.dtype,
    float32Size: formatBytes(q.float32Bytes, lang),
  };
  return q.float32TestAccuracy === undefined
    ? t('quantized.note_unmeasured', params)
    : t('quantized.note', {
        ...params,
        float32Accuracy: formatPercent(q.float32TestAccuracy, lang, 2),
      });
}

/**
 * The words after a quantized model's line of `/models`: `uint8 weights; float32: 78.12%`;
 * undefined for float32 weights.
 */
export function quantizationSummary(
  meta: Pick<ModelMeta, 'quantization'>,
  t: Translate,
  lang: Language,
): string | undefined {
  const q = meta.quantization;
  if (!q) return undefined;
  return q.float32TestAccuracy === undefined
    ? t('quantized.summary_unmeasured', { dtype: q.dtype })
    : t('quantized.summary', {
        dtype: q.dtype,
        float32Accuracy: formatPercent(q.float32TestAccuracy, lang, 2),
      });
}
