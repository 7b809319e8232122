/**
 * Who may do what. Roles belong to a person on one platform (platform + platform user id), never
 * to a chat: being a group's admin on Telegram or holding a Discord server role grants nothing
 * here. Admins are named in the configuration (`ADMINS`); instructors are granted by an admin
 * with `/grant` and stored in the database; everyone else is a student.
 */
import { UserError, type UserErrorId } from '../errors.ts';
import type { Platform } from './context.ts';

/** The roles, weakest first: each may do what the ones before it may. */
export const ROLES = ['student', 'instructor', 'admin'] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** True for a {@link Role}. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * True when `role` may do what `needed` may (`admin` includes `instructor`).
 * @example
 * hasRole('admin', 'instructor'); // true
 * hasRole('student', 'instructor'); // false
 */
export function hasRole(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** A user named as admin in the configuration. */
export interface AdminKey {
  readonly platform: Platform;
  readonly userId: string;
}

/**
 * The role the core acts on: `admin` for a user the configuration names (or the web chat's
 * operator, vouched for by the adapter), else the stored role.
 */
export function effectiveRole(
  stored: Role,
  platform: Platform,
  userId: string,
  admins: readonly AdminKey[],
  operator = false,
): Role {
  if (operator || admins.some((a) => a.platform === platform && a.userId === userId)) {
    return 'admin';
  }
  return stored;
}

/**
 * Throws unless the user has at least the role `needed`: the dispatcher answers with a polite
 * localized refusal and logs it.
 *
 * @param user the user as the core resolved them (`ctx.storedUser`, whose role is effective).
 * @param command the command name, without a slash, for the message.
 * @param refusal the error to throw instead of `role.required` (the command's own advice).
 * @throws {UserError} `role.required` (or `refusal`) with `{ command, role }`.
 * @example
 * requireRole(ctx.storedUser, 'instructor', 'retrain');
 */
export function requireRole(
  user: { readonly role: Role },
  needed: Role,
  command: string,
  refusal: UserErrorId = 'role.required',
): void {
  if (!hasRole(user.role, needed)) {
    throw new UserError(refusal, `/${command} needs the ${needed} role, user is ${user.role}`, {
      command,
      role: needed,
    });
  }
}
