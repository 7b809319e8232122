/**
 * True for Prisma's unique-constraint error (P2002). Checked by code rather than by class: the
 * two generated clients each bring their own error classes.
 */
export function isUniqueViolation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'code' in e && e.code === 'P2002';
}
