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
  // issue 19: the decode budget, read from the header before any pixel is decoded
  'image.too_many_channels',
  'image.unsupported_sample_format',
  'image.too_many_frames',
  'image.extreme_aspect',
  'image.too_many_scans',
  'image.too_much_data',
  // issue 15: the live bot in a busy lab (back-pressure, job deadlines)
  'server.busy',
  'job.timeout',
  // issue 18: student Keras model files and lab checks
  'keras.too_large',
  'keras.unsupported_format',
  'keras.corrupt',
  'keras.weights_only',
  'keras.subclassed',
  'keras.unsupported_layer',
  'keras.channels_first',
  'keras.unknown_input_size',
  'keras.weights_mismatch',
  'keras.missing',
  'lab.unknown_task',
  'lab.instructors_only',
  // issue 16: the class teaches the bot
  'label.not_found',
  'label.not_yours',
  'label.invalid',
  'classdata.not_enough',
  'export.no_files',
  // issue 16: /retrain <model> with=class
  'retrain.class_model',
  // issue 14: roles and training jobs
  'role.required',
  'user.unknown',
  'job.unknown',
  'job.limit',
  'job.busy',
  'version.unknown',
  // issue 14 (t14): the BullMQ queue's Redis is down when a job is queued
  'job.queue_down',
  // issue 14 follow-up (w14): a version whose files are neither here nor in the database
  'version.unavailable',
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
