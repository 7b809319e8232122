import { renderTable, paginateTable } from '../../imaging/table.ts';
import { labTask } from '../../ml/lab/lab-task.ts';
import type { Command } from '../command.ts';
import { formatDateTime, formatPercent, type Language, type Translate } from '../i18n.ts';
import type { LabSubmission } from '../ports.ts';
import type { TableInput } from '../../imaging/table.ts';

function better(a: LabSubmission, b: LabSubmission): boolean {
  if (a.passed !== b.passed) return a.passed > b.passed;
  return (a.testAccuracy ?? -1) > (b.testAccuracy ?? -1);
}

/**
 * The instructors' table: one row per student and task with the number of attempts, the latest
 * and the best attempt (most requirements passed, then test accuracy).
 */
export function submissionsTable(
  rows: readonly LabSubmission[],
  t: Translate,
  lang: Language,
  task?: string,
): TableInput {
  const groups = new Map<string, LabSubmission[]>();
  for (const r of rows) {
    const k = `${r.userId}\u0000${r.task}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const cell = (r: LabSubmission): string =>
    `${formatDateTime(r.createdAt, lang)} ${r.passed}/${r.total}${r.testAccuracy === null ? '' : ` ${formatPercent(r.testAccuracy, lang)}`}`;
  const body = [...groups.values()].map((list) => {
    const latest = list[list.length - 1]!;
    const best = list.reduce((a, b) => (better(b, a) ? b : a));
    return [
      latest.userName ?? latest.userId,
      latest.task,
      String(list.length),
      cell(latest),
      cell(best),
      `${best.passed}/${best.total}`,
      best.testAccuracy === null ? '—' : formatPercent(best.testAccuracy, lang),
    ];
  });
  return {
    title: t('lab.submissions.title', { task: task ? ` — ${task}` : '' }),
    header: [
      t('lab.submissions.student'),
      t('lab.submissions.task'),
      t('lab.submissions.attempts'),
      t('lab.submissions.latest'),
      t('lab.submissions.best'),
      t('lab.submissions.requirements'),
      t('lab.submissions.accuracy'),
    ],
    align: ['left', 'left', 'right', 'left', 'left', 'right', 'right'],
    rows: body,
  };
}

/**
 * `/submissions [task]`: for instructors (role `instructor` or `admin`), every student's latest
 * and best lab check on this platform as a table image; students are told politely to use
 * `/history` (`lab.instructors_only`), and do not see it in `/help`.
 */
export default {
  name: 'submissions',
  description: {
    en: "students' lab checks: the latest and the best per task",
    ru: 'проверки лабораторных студентов: последняя и лучшая по заданию',
  },
  usage: { en: '[task]', ru: '[задание]' },
  options: [
    {
      name: 'task',
      type: 'string',
      description: { en: 'only this lab task', ru: 'только это задание' },
    },
  ],
  role: 'instructor',
  refusal: 'lab.instructors_only',
  async execute(ctx, services) {
    const arg = ctx.args.trim().split(/\s+/)[0] || undefined;
    const task = arg === undefined ? undefined : labTask(arg).id;
    const rows = (await services.labSubmissions?.listAll(ctx.platform, task)) ?? [];
    const suffix = task ? ` (${task})` : '';
    if (rows.length === 0) {
      await ctx.reply(ctx.t('lab.submissions.empty', { task: suffix }));
      return;
    }
    const table = submissionsTable(rows, ctx.t, ctx.lang, task);
    const students = new Set(rows.map((r) => r.userId)).size;
    for (const page of paginateTable(table, 40)) {
      await ctx.replyImage(
        await renderTable(page),
        ctx.t('lab.submissions.caption', { count: students, attempts: rows.length, task: suffix }),
      );
    }
  },
} satisfies Command;
