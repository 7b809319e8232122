/**
 * A lab check's results in the student's language: one line per requirement (✓ or ✗ with the
 * reason, "conv1 (layer 1): expected 96 filters 11×11 stride 4, found 64 filters 3×3 stride 1"),
 * the same as a table image, and the test-set lines. Shared by `/check` and the CLI's `check`.
 */
import type { TableInput } from '../imaging/table.ts';
import type { FoundStep, RequirementResult } from '../ml/lab/check-model.ts';
import type { LabTask, LayerStep } from '../ml/lab/lab-task.ts';
import { literalParams, type Literal } from './context.ts';
import {
  formatCompact,
  formatNumber,
  formatPercent,
  type Language,
  type MessageKey,
  type Translate,
} from './i18n.ts';

/** What a check found about the file, for the report's header. */
export interface CheckedFile {
  readonly fileName: string;
  readonly kerasVersion: string | null;
  readonly style: 'functional' | 'sequential';
  readonly params: number;
  readonly macs: number;
}

/** Test-set figures, when the model was tested. */
export interface EvaluationSummary {
  readonly dataset: string;
  readonly count: number;
  /** Top-1 accuracy, fraction. */
  readonly accuracy: number;
  /** Per-class accuracy, fraction, by class index. */
  readonly perClass: readonly number[];
  readonly classNames: readonly string[];
  /** Milliseconds to classify 1,000 images here. */
  readonly msPer1000: number;
}

const STEP_FIELDS = ['filters', 'kernel', 'pool', 'stride', 'padding', 'units', 'rate'] as const;

/**
 * A layer of a sequence in words: `Conv2D 96 filters 11×11 stride 4`. With `like`, only the
 * settings `like` names are shown (the found layer described the way the expected one is).
 */
export function describeStep(step: LayerStep | FoundStep, t: Translate, like?: LayerStep): string {
  const parts = [t(`lab.op.${step.op}` as MessageKey)];
  const fields =
    like && like.op === step.op ? STEP_FIELDS.filter((f) => like[f] !== undefined) : STEP_FIELDS;
  for (const f of fields) {
    const v = step[f];
    if (v === undefined) continue;
    if ((f === 'stride' || f === 'padding') && !like && (v === 1 || v === 'valid')) continue;
    parts.push(t(`lab.step.${f}` as MessageKey, { [f]: v }));
  }
  return parts.join(' ');
}

function opName(op: unknown, t: Translate): string {
  const key = `lab.opcount.${String(op)}`;
  const text = t(key as MessageKey);
  return text === key ? t(`lab.op.${String(op)}` as MessageKey) : text;
}

/** The student's names in a result's parameters (from their file), shown literally. */
const NAMED_PARAMS = ['layer', 'className'] as const;

/**
 * The reason or detail of one result, in words; `literal` makes the file's layer and class names
 * show literally (`ChatContext.literal`: Discord escapes its Markdown).
 */
export function resultDetail(r: RequirementResult, t: Translate, literal?: Literal): string {
  const params = literalParams(r.params, NAMED_PARAMS, literal);
  if ('op' in r.params) params.opName = opName(r.params.op, t);
  if (r.expected) params.expected = describeStep(r.expected, t);
  if (r.found) params.found = describeStep(r.found, t, r.expected);
  const key = r.ok ? `lab.ok.${r.kind}` : `lab.why.${r.code}`;
  return t(key as MessageKey, params);
}

/**
 * One line per requirement: `✓ Input shape: 32×32×3`, `✗ Layer sequence: conv1 …`; `literal` as
 * in {@link resultDetail}.
 */
export function resultLines(
  results: readonly RequirementResult[],
  t: Translate,
  literal?: Literal,
): string[] {
  return results.map(
    (r) =>
      `${r.ok ? '✓' : '✗'} ${t(`lab.req.${r.kind}` as MessageKey)}: ${resultDetail(r, t, literal)}`,
  );
}

/**
 * The report's header lines: task, file, Keras version, parameters and MACs. `literal` makes the
 * user's file name show literally (`ChatContext.literal`: Discord escapes its Markdown).
 */
export function reportHeader(
  task: LabTask,
  file: CheckedFile,
  t: Translate,
  lang: Language,
  literal: Literal = (text) => text,
): string[] {
  return [
    t('lab.report.header', { title: task.title[lang] }),
    t('lab.report.file', {
      file: literal(file.fileName),
      version: file.kerasVersion ?? '?',
      style: t(file.style === 'functional' ? 'lab.style.functional' : 'lab.style.sequential'),
      params: formatNumber(file.params, lang),
      macs: formatCompact(file.macs, lang),
    }),
  ];
}

/** The test-set lines: top-1, time for 1,000 images, the weakest classes. */
export function evaluationLines(e: EvaluationSummary, t: Translate, lang: Language): string[] {
  const worst = e.perClass
    .map((a, i) => ({ a, name: e.classNames[i] ?? String(i) }))
    .sort((x, y) => x.a - y.a)
    .slice(0, 3)
    .map((c) => `${c.name} ${formatPercent(c.a, lang)}`)
    .join(', ');
  return [
    t('lab.eval.result', {
      dataset: e.dataset,
      count: formatNumber(e.count, lang),
      accuracy: formatPercent(e.accuracy, lang),
      ms: formatNumber(e.msPer1000, lang),
    }),
    t('lab.eval.worst', { list: worst }),
  ];
}

/** The whole text report; `literal` as in {@link reportHeader}. */
export function reportText(
  task: LabTask,
  file: CheckedFile,
  results: readonly RequirementResult[],
  t: Translate,
  lang: Language,
  literal?: Literal,
): string {
  const passed = results.filter((r) => r.ok).length;
  return [
    ...reportHeader(task, file, t, lang, literal),
    '',
    ...resultLines(results, t, literal),
    '',
    t('lab.summary', { passed, total: results.length }),
  ].join('\n');
}

/** The requirements as a table image's input. */
export function reportTable(
  task: LabTask,
  file: CheckedFile,
  results: readonly RequirementResult[],
  t: Translate,
  lang: Language,
): TableInput {
  const [title, fileLine] = reportHeader(task, file, t, lang);
  const passed = results.filter((r) => r.ok).length;
  return {
    ...(title === undefined ? {} : { title }),
    header: ['', t('lab.submissions.requirements'), ''],
    align: ['left', 'left', 'left'],
    rows: results.map((r) => [
      r.ok ? '✓' : '✗',
      t(`lab.req.${r.kind}` as MessageKey),
      wrap(resultDetail(r, t), 70),
    ]),
    footnotes: [
      ...(fileLine ? [fileLine] : []),
      t('lab.summary', { passed, total: results.length }),
    ],
  };
}

function wrap(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
