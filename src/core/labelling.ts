/**
 * issue 16: adding a label to a photo, shared by the buttons under an answer, `/label` and
 * `/review`: who may label what, which source the row gets, and the note shown afterwards.
 */
import { UserError } from '../errors.ts';
import type { CommandContext, CoreServices } from './command.ts';
import { isInstructorRole } from './labels.ts';
import type { LabelledSubmission, LabelSource, StoredLabel } from './ports.ts';
import { requireRole } from './roles.ts';

/**
 * Refuses a student (the trainer issue's `requireRole`, for checks inside a command or a press).
 * @throws {UserError} `role.required` unless the user is an instructor or admin.
 */
export function requireInstructor(ctx: CommandContext, command: string): void {
  requireRole(ctx.storedUser, 'instructor', command);
}

/** The class names of the model that answered a submission (digits when it is not installed). */
export async function classNamesOf(
  services: CoreServices,
  s: LabelledSubmission,
): Promise<readonly string[]> {
  const meta = (await services.models.list()).find((m) => m.id === s.modelId);
  return meta?.classNames ?? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
}

/** A label given by a user: a confirmation of the prediction, or a class. */
export type LabelChoice = { readonly confirm: true } | { readonly label: string };

/** What {@link labelSubmission} stored, and the note for the answered message. */
export interface LabelOutcome {
  readonly stored: StoredLabel;
  readonly note: string;
}

/**
 * Adds the user's label to a submission. A student may label only their own photo (the row's
 * source is `confirmed` when the label is the prediction, else `corrected`); an instructor or
 * admin may label any (source `instructor`).
 *
 * @throws {UserError} `label.not_yours` for another student's photo; `label.invalid` for a label
 *   that is not one of the model's classes.
 */
export async function labelSubmission(
  ctx: CommandContext,
  services: CoreServices,
  s: LabelledSubmission,
  choice: LabelChoice,
): Promise<LabelOutcome> {
  const instructor = isInstructorRole(ctx.storedUser.role);
  const own = s.platform === ctx.platform && s.userId === ctx.user.id;
  if (!own && !instructor) {
    throw new UserError(
      'label.not_yours',
      `${ctx.platform}:${ctx.user.id} tried to label submission ${s.id} of ${s.platform}:${s.userId}`,
    );
  }
  const label = 'confirm' in choice ? (s.predictedClass ?? '') : choice.label;
  const known = await classNamesOf(services, s);
  if (!known.includes(label)) {
    throw new UserError('label.invalid', `"${label}" is not a class of ${s.modelId ?? '?'}`, {
      value: label,
      known: known.join(', '),
    });
  }
  const source: LabelSource = instructor
    ? 'instructor'
    : label === s.predictedClass
      ? 'confirmed'
      : 'corrected';
  const stored = await services.classData.addLabel({
    submissionId: s.id,
    label,
    by: { platform: ctx.platform, userId: ctx.user.id },
    role: ctx.storedUser.role,
    source,
  });
  services.logger.info(
    { submission: s.id, label, source, platform: ctx.platform, user: ctx.user.id },
    'photo labelled',
  );
  const name = ctx.literal?.(ctx.user.name) ?? ctx.user.name;
  return { stored, note: ctx.t(`label.note.${source}`, { name, label }) };
}
