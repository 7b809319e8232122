/**
 * Identifiers of every failure a user can cause. Each is the key of a localized message (the
 * core's `src/core/i18n.ts`) and the `error.code` of the CLI's JSON output. This module imports
 * nothing from `src/`, so any layer may throw a {@link UserError}.
 */
export const USER_ERROR_IDS = [
  'image.empty',
  'image.too_large_bytes',
  'image.too_many_pixels',
  'image.unsupported_format',
  'image.pdf',
  'image.text',
  'image.truncated',
  'image.corrupt',
  'image.no_ink',
  'image.no_garment',
  'image.missing',
  'model.unknown',
  'model.missing_files',
  'dataset.missing',
  'dataset.corrupt',
  'argument.invalid',
  // issue 16: the class teaches the bot
  'label.not_found',
  'label.not_yours',
  'label.invalid',
  'classdata.not_enough',
  'export.no_files',
  // issue 14: roles and training jobs
  'role.required',
  'user.unknown',
  'job.unknown',
  'job.limit',
  'job.busy',
  'version.unknown',
] as const;

/** One of {@link USER_ERROR_IDS}. */
export type UserErrorId = (typeof USER_ERROR_IDS)[number];

/**
 * A failure caused by the user's input (a bad image, an unknown model name...). It is answered
 * with a localized message, logged, and never crashes the process.
 *
 * @example
 * throw new UserError('image.pdf', 'the file is a PDF document');
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    /** Stable identifier, also the key of the localized message. */
    readonly id: UserErrorId,
    /** English detail for logs and the CLI; never shown raw in chats. */
    message: string,
    /** Values interpolated into the localized message. */
    readonly params: Readonly<Record<string, string | number>> = {},
  ) {
    super(message);
  }
}

/** True for a {@link UserError}. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
