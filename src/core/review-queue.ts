/**
 * issue 16: the instructors' review queue. `/review` shows the oldest photo that no instructor
 * has checked and that a student corrected or the model was unsure of; each of its buttons adds
 * an instructor label (accept, relabel, exclude) and shows the next one.
 */
import { renderProbabilityChart } from '../imaging/chart.ts';
import type { CommandContext, CoreServices } from './command.ts';
import type { ReplyButton } from './context.ts';
import { formatPercent } from './i18n.ts';
import { classNamesOf } from './labelling.ts';
import { needsReview, REVIEW_BUTTON, studentLabel } from './labels.ts';
import type { ClassDataFilter, LabelledSubmission } from './ports.ts';

/** What an instructor reviews from a chat: a group's own photos; from a private chat, all. */
export function classScope(ctx: CommandContext): ClassDataFilter {
  return ctx.chat.type === 'group' ? { platform: ctx.platform, chatId: ctx.chat.id } : {};
}

/** The photos waiting for review in a scope, oldest first. */
export async function reviewQueue(
  services: CoreServices,
  scope: ClassDataFilter,
): Promise<LabelledSubmission[]> {
  return (await services.classData.list(scope)).filter(needsReview);
}

/**
 * The review buttons of a submission: accept (the student's label, else the prediction),
 * exclude, and every class to relabel. Data: `r:<submissionId>:<a|x|class index>`.
 */
export function reviewKeyboard(
  ctx: CommandContext,
  s: LabelledSubmission,
  classNames: readonly string[],
): ReplyButton[][] {
  const data = (v: string): string => `${REVIEW_BUTTON}:${s.id}:${v}`;
  const proposed = studentLabel(s.labels)?.label ?? s.predictedClass ?? '?';
  const digits = classNames.map((name, i) => ({ text: name, data: data(String(i)) }));
  const half = Math.ceil(digits.length / 2);
  return [
    [
      { text: ctx.t('review.accept', { label: proposed }), data: data('a') },
      { text: ctx.t('review.exclude'), data: data('x') },
    ],
    digits.slice(0, half),
    digits.slice(half),
  ];
}

/**
 * Shows the next photo of the queue with its preprocessed input (what the model saw), the
 * prediction and the student's label, with the review buttons; or says the queue is empty.
 */
export async function showNextReview(ctx: CommandContext, services: CoreServices): Promise<void> {
  const queue = await reviewQueue(services, classScope(ctx));
  const s = queue[0];
  if (!s || s.imagePath === null) {
    await ctx.reply(ctx.t('review.empty'));
    return;
  }
  const modelId = s.modelId ?? services.defaultModel;
  const bytes = await services.classData.readImage(s.imagePath);
  const { meta, result } = await services.classifier.classify(modelId, bytes);
  const student = studentLabel(s.labels);
  const chart = await renderProbabilityChart({
    probabilities: result.probabilities,
    classNames: meta.classNames,
    predicted: result.classIndex,
    input: result.input,
    title: `#${s.id}`,
    xTitle: ctx.t('chart.x'),
    yTitle: ctx.t('chart.y'),
  });
  const sender = s.userName ?? `${s.platform}:${s.userId}`;
  const caption = ctx.t('review.caption', {
    id: s.id,
    left: queue.length,
    user: ctx.literal?.(sender) ?? sender,
    date: s.createdAt.toISOString().slice(0, 16).replace('T', ' '),
    model: `${s.modelId ?? '?'} ${s.modelVersion ?? ''}`.trim(),
    predicted: s.predictedClass ?? '?',
    confidence: formatPercent(s.confidence ?? 0, ctx.lang),
    student: student?.label ?? ctx.t('review.no_student_label'),
  });
  await ctx.replyImage(chart, caption, {
    buttons: reviewKeyboard(ctx, s, await classNamesOf(services, s)),
  });
}
