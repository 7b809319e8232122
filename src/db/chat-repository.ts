import type { AppPrismaClient } from './client.ts';
import { isUniqueViolation } from './prisma-errors.ts';

/** A conversation on one platform, as stored. */
export interface ChatRecord {
  readonly id: number;
  readonly platform: string;
  readonly platformId: string;
  /** The platform's kind of chat: `private`, `group`, `supergroup`, `guild_text`, ... */
  readonly type: string;
  readonly title: string | null;
  /** The chat's default model (`/model`), null for the configured one. */
  readonly defaultModel: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Where a message came from, as an adapter sees it. */
export interface PlatformChat {
  readonly platform: string;
  readonly platformId: string;
  readonly type: string;
  readonly title?: string | undefined;
}

/** Chats, looked up by their platform identity. */
export interface ChatRepository {
  /** Creates the chat on first contact, otherwise refreshes its type and title. */
  upsertFromPlatform(chat: PlatformChat): Promise<ChatRecord>;
  get(id: number): Promise<ChatRecord | undefined>;
  findByPlatform(platform: string, platformId: string): Promise<ChatRecord | undefined>;
  /** Sets (null: clears) the chat's default model. */
  setDefaultModel(id: number, model: string | null): Promise<ChatRecord>;
}

function toChat(row: ChatRecord): ChatRecord {
  return {
    id: row.id,
    platform: row.platform,
    platformId: row.platformId,
    type: row.type,
    title: row.title,
    defaultModel: row.defaultModel,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Creates the chat repository over a Prisma client.
 *
 * @example
 * const chat = await chats.upsertFromPlatform({ platform: 'telegram', platformId: '-100', type: 'group' });
 */
export function createChatRepository(prisma: AppPrismaClient): ChatRepository {
  return {
    async upsertFromPlatform(chat) {
      const key = { platform: chat.platform, platformId: chat.platformId };
      const refreshed = { type: chat.type, ...(chat.title !== undefined && { title: chat.title }) };
      const upsert = () =>
        prisma.chat.upsert({
          where: { platform_platformId: key },
          create: { ...key, ...refreshed },
          update: refreshed,
        });
      try {
        return toChat(await upsert());
      } catch (e) {
        if (isUniqueViolation(e)) return toChat(await upsert());
        throw e;
      }
    },

    async get(id) {
      const row = await prisma.chat.findUnique({ where: { id } });
      return row === null ? undefined : toChat(row);
    },

    async findByPlatform(platform, platformId) {
      const row = await prisma.chat.findUnique({
        where: { platform_platformId: { platform, platformId } },
      });
      return row === null ? undefined : toChat(row);
    },

    async setDefaultModel(id, model) {
      return toChat(await prisma.chat.update({ where: { id }, data: { defaultModel: model } }));
    },
  };
}
