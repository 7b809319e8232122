/**
 * issue 16: what the class's labels mean. Label rows are facts (who said what, when); these
 * pure functions decide from them which label a photo has, whether an instructor should look at
 * it, and whether it trains by default.
 *
 * The default training rule, so that a student who labels at random cannot poison the training
 * set unreviewed:
 * - an instructor's label (from a button, `/label`, `/review` or `labels import`) always trains,
 *   and the latest one wins over every student's; an instructor's "exclude" removes the photo;
 * - a student's ✓ trains when the model was confident ({@link CONFIDENT});
 * - a student's correction trains only after an instructor accepted it in `/review` (which adds
 *   an instructor label).
 */
import type { ReplyButton } from './context.ts';
import type { LabelledSubmission, StoredLabel } from './ports.ts';
import { hasRole, type Role } from './roles.ts';

/** True for the roles that label any photo and whose labels win (`instructor`, `admin`). */
export function isInstructorRole(role: Role): boolean {
  return hasRole(role, 'instructor');
}

/**
 * A prediction at or above this softmax probability is "confident": a student's ✓ on it trains
 * by default, and below it the photo joins the review queue.
 */
export const CONFIDENT = 0.9;

/** The label a photo has now: the latest instructor row, else the latest student row. */
export interface EffectiveLabel {
  /** The label; null when an instructor excluded the photo. */
  readonly label: string | null;
  readonly row: StoredLabel;
  /** True when the row is an instructor's. */
  readonly reviewed: boolean;
}

/**
 * The effective label of a submission, or undefined when nobody labelled it.
 * @param labels its label rows, oldest first.
 */
export function effectiveLabel(labels: readonly StoredLabel[]): EffectiveLabel | undefined {
  const instructor = labels.findLast((l) => isInstructorRole(l.role));
  if (instructor) return { label: instructor.label, row: instructor, reviewed: true };
  const student = labels.at(-1);
  return student && { label: student.label, row: student, reviewed: false };
}

/** The latest student label of a submission, if any. */
export function studentLabel(labels: readonly StoredLabel[]): StoredLabel | undefined {
  return labels.findLast((l) => !isInstructorRole(l.role));
}

/**
 * The label a photo trains with by default (see the module comment), or undefined when it does
 * not train: unlabelled, excluded, or a student's unreviewed correction or ✓ of an unconfident
 * answer.
 */
export function trainingLabel(s: LabelledSubmission): string | undefined {
  const e = effectiveLabel(s.labels);
  if (!e || e.label === null) return undefined;
  if (e.reviewed) return e.label;
  return e.row.source === 'confirmed' && (s.confidence ?? 0) >= CONFIDENT ? e.label : undefined;
}

/**
 * True when an instructor should look at the photo: no instructor has labelled it, and a
 * student corrected it or the model was not confident.
 */
export function needsReview(s: LabelledSubmission): boolean {
  if (s.labels.some((l) => isInstructorRole(l.role))) return false;
  const student = studentLabel(s.labels);
  return student?.source === 'corrected' || (s.confidence ?? 0) < CONFIDENT;
}

/** True for predictions of a digit model, which get the confirm-or-correct buttons. */
export function isDigitModel(meta: { readonly preprocess: string }): boolean {
  return meta.preprocess === 'mnist-digit';
}

/** Telegram's limit on `callback_data`, bytes. */
export const MAX_BUTTON_DATA_BYTES = 64;

/** The prefix of the confirm-or-correct buttons' data. */
export const LABEL_BUTTON = 'l';
/** The prefix of the review buttons' data. */
export const REVIEW_BUTTON = 'r';

/**
 * The confirm-or-correct keyboard under a digit prediction: ✓, then the classes in two rows.
 * Data: `l:<messageId>:<y|class index>`, found again through the submission of that message.
 * @returns undefined when the data would exceed {@link MAX_BUTTON_DATA_BYTES}.
 */
export function labelKeyboard(
  messageId: string,
  classNames: readonly string[],
  confirmText: string,
): ReplyButton[][] | undefined {
  const data = (v: string): string => `${LABEL_BUTTON}:${messageId}:${v}`;
  if (Buffer.byteLength(data(String(classNames.length))) > MAX_BUTTON_DATA_BYTES) return undefined;
  const digits = classNames.map((name, i) => ({ text: name, data: data(String(i)) }));
  const half = Math.ceil(digits.length / 2);
  return [[{ text: confirmText, data: data('y') }], digits.slice(0, half), digits.slice(half)];
}

/** A parsed button: its prefix, the id it refers to, and the choice. */
export interface ParsedButton {
  readonly prefix: string;
  readonly id: string;
  readonly choice: string;
}

/** Parses `prefix:id:choice`; undefined for anything else (stale or forged data). */
export function parseButtonData(data: string): ParsedButton | undefined {
  const m = /^([a-z]):([^:]{1,40}):([a-z0-9]{1,3})$/.exec(data);
  return m ? { prefix: m[1]!, id: m[2]!, choice: m[3]! } : undefined;
}
