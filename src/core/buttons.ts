/**
 * issue 16: button presses. Every button's data names what it acts on (`l:<messageId>:<choice>`
 * under a prediction, `r:<submissionId>:<choice>` under a review), so one handler serves them
 * all, before and after a restart, on every platform. A press is always answered: with a short
 * notice, or with the localized reason it was refused.
 */
import { isUserError, UserError } from '../errors.ts';
import type { CommandContext, CoreServices } from './command.ts';
import type { ButtonPress } from './context.ts';
import { userErrorKey } from './i18n.ts';
import { classNamesOf, labelSubmission, requireInstructor } from './labelling.ts';
import {
  LABEL_BUTTON,
  parseButtonData,
  REVIEW_BUTTON,
  studentLabel,
  type ParsedButton,
} from './labels.ts';
import { showNextReview } from './review-queue.ts';

/**
 * Handles one press: labels the photo under the answer, or records an instructor's review and
 * shows the next photo of the queue. User errors (another student's photo, a student pressing a
 * review button, stale data) are answered to the presser alone and logged; the buttons stay.
 */
export async function handlePress(
  ctx: CommandContext,
  press: ButtonPress,
  services: CoreServices,
): Promise<void> {
  const parsed = parseButtonData(press.data);
  try {
    if (parsed?.prefix === LABEL_BUTTON) await pressLabel(ctx, press, services, parsed);
    else if (parsed?.prefix === REVIEW_BUTTON) await pressReview(ctx, press, services, parsed);
    else throw new UserError('label.not_found', `unknown button data "${press.data}"`);
  } catch (e) {
    if (!isUserError(e)) throw e;
    services.logger.info(
      {
        platform: ctx.platform,
        chat: ctx.chat.id,
        user: ctx.user.id,
        code: e.id,
        detail: e.message,
      },
      'button press refused',
    );
    await press.answer(ctx.t(userErrorKey(e.id), e.params));
  }
}

/** The class a button's choice names (`0`.. its index), or undefined for `y`/`a`/`x`. */
function chosenClass(choice: string, classNames: readonly string[]): string | undefined {
  if (!/^\d+$/.test(choice)) return undefined;
  const name = classNames[Number(choice)];
  if (name === undefined) throw new UserError('label.not_found', `no class ${choice}`);
  return name;
}

async function pressLabel(
  ctx: CommandContext,
  press: ButtonPress,
  services: CoreServices,
  b: ParsedButton,
): Promise<void> {
  const s = await services.classData.findByMessage(ctx.platform, ctx.chat.id, b.id);
  if (!s) throw new UserError('label.not_found', `no classified submission for message ${b.id}`);
  const label = chosenClass(b.choice, await classNamesOf(services, s));
  const { stored, note } = await labelSubmission(
    ctx,
    services,
    s,
    label === undefined ? { confirm: true } : { label },
  );
  await press.answer(ctx.t('label.saved', { label: stored.label ?? '' }));
  await press.finish(note);
}

async function pressReview(
  ctx: CommandContext,
  press: ButtonPress,
  services: CoreServices,
  b: ParsedButton,
): Promise<void> {
  requireInstructor(ctx, 'review');
  const s = await services.classData.get(b.id);
  if (!s) throw new UserError('label.not_found', `no submission ${b.id}`);
  const relabel = chosenClass(b.choice, await classNamesOf(services, s));
  const label =
    b.choice === 'x'
      ? null
      : (relabel ?? studentLabel(s.labels)?.label ?? s.predictedClass ?? null);
  await services.classData.addLabel({
    submissionId: s.id,
    label,
    by: { platform: ctx.platform, userId: ctx.user.id },
    role: ctx.storedUser.role,
    source: 'instructor',
  });
  services.logger.info({ submission: s.id, label, user: ctx.user.id }, 'photo reviewed');
  const name = ctx.literal?.(ctx.user.name) ?? ctx.user.name;
  const note =
    label === null
      ? ctx.t('review.note.excluded', { name })
      : relabel === undefined
        ? ctx.t('review.note.accepted', { name, label })
        : ctx.t('review.note.relabelled', { name, label });
  await press.answer();
  await press.finish(note);
  await showNextReview(ctx, services);
}
