/** Identifiers of the database layer's own failures (never caused by a chat user's input). */
export type DatabaseErrorCode =
  | 'not_found'
  | 'invalid_transition'
  | 'invalid_argument'
  | 'migration.changed'
  // review of issue 14 follow-up: a row another process registered first (a version number)
  | 'conflict'
  // version retention follow-up: a worker's version not recorded (its job or its row went)
  | 'lease_lost'
  | 'removed'
  // review of the retention follow-up: a worker's version not recorded (its job was cancelled)
  | 'cancelled'
  // SQLite re-open: the configured file is not a SQLite database (SQLITE_NOTADB)
  | 'not_a_database';

/**
 * A database-layer failure with a stable code, e.g. activating a model version that was never
 * registered. Unexpected driver failures are passed on unchanged.
 *
 * @example
 * throw new DatabaseError('not_found', 'no model version lenet-mnist@3');
 */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  constructor(
    readonly code: DatabaseErrorCode,
    message: string,
  ) {
    super(message);
  }
}
