import type { AppPrismaClient } from './client.ts';
import { DatabaseError } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';

/** What a user may do: students classify, instructors also train and export, admins everything. */
export const ROLES = ['student', 'instructor', 'admin'] as const;
/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** A person on one chat platform, as stored. */
export interface UserRecord {
  readonly id: number;
  /** `telegram`, `discord`, ... */
  readonly platform: string;
  /** The platform's own user id, as text (Telegram ids exceed 2^31, Discord's are snowflakes). */
  readonly platformId: string;
  readonly name: string | null;
  /** Language the platform reports (e.g. `de`). */
  readonly language: string | null;
  /** Language chosen by the user; wins over {@link UserRecord.language}. */
  readonly languageOverride: string | null;
  readonly role: Role;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Who sent a message, as an adapter sees it. */
export interface PlatformIdentity {
  readonly platform: string;
  readonly platformId: string;
  readonly name?: string | undefined;
  readonly language?: string | undefined;
}

/** Users, looked up by their platform identity. */
export interface UserRepository {
  /**
   * Creates the user on first contact, otherwise refreshes name and platform language (never
   * role or language override).
   */
  upsertFromPlatform(identity: PlatformIdentity): Promise<UserRecord>;
  get(id: number): Promise<UserRecord | undefined>;
  findByPlatform(platform: string, platformId: string): Promise<UserRecord | undefined>;
  /** Sets (or with `null` clears) the language the user chose. */
  setLanguageOverride(id: number, language: string | null): Promise<UserRecord>;
  setRole(id: number, role: Role): Promise<UserRecord>;
}

interface UserRow {
  id: number;
  platform: string;
  platformId: string;
  name: string | null;
  language: string | null;
  languageOverride: string | null;
  role: string;
  createdAt: Date;
  updatedAt: Date;
}

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function toUser(row: UserRow): UserRecord {
  if (!isRole(row.role)) throw new Error(`user ${row.id} has unknown role "${row.role}"`);
  return {
    id: row.id,
    platform: row.platform,
    platformId: row.platformId,
    name: row.name,
    language: row.language,
    languageOverride: row.languageOverride,
    role: row.role,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Creates the user repository over a Prisma client.
 *
 * @example
 * const user = await users.upsertFromPlatform({ platform: 'telegram', platformId: '42', name: 'Ada' });
 */
export function createUserRepository(prisma: AppPrismaClient): UserRepository {
  async function update(id: number, data: { languageOverride?: string | null; role?: Role }) {
    const { count } = await prisma.user.updateMany({ where: { id }, data });
    if (count === 0) throw new DatabaseError('not_found', `no user ${id}`);
    return toUser(await prisma.user.findUniqueOrThrow({ where: { id } }));
  }

  return {
    async upsertFromPlatform(identity) {
      const key = { platform: identity.platform, platformId: identity.platformId };
      const refreshed = {
        ...(identity.name !== undefined && { name: identity.name }),
        ...(identity.language !== undefined && { language: identity.language }),
      };
      const upsert = () =>
        prisma.user.upsert({
          where: { platform_platformId: key },
          create: { ...key, ...refreshed },
          update: refreshed,
        });
      try {
        return toUser(await upsert());
      } catch (e) {
        // Two first messages at once: both tried to insert; the loser now finds the row.
        if (isUniqueViolation(e)) return toUser(await upsert());
        throw e;
      }
    },

    async get(id) {
      const row = await prisma.user.findUnique({ where: { id } });
      return row === null ? undefined : toUser(row);
    },

    async findByPlatform(platform, platformId) {
      const row = await prisma.user.findUnique({
        where: { platform_platformId: { platform, platformId } },
      });
      return row === null ? undefined : toUser(row);
    },

    setLanguageOverride: (id, language) => update(id, { languageOverride: language }),

    async setRole(id, role) {
      // Callers may pass unchecked text (a chat command's argument) through a cast.
      const text: string = role;
      if (!isRole(text)) {
        throw new DatabaseError('invalid_argument', `unknown role "${text}"`);
      }
      return update(id, { role });
    },
  };
}
