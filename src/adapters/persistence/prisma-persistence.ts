import type { ChatInfo, ChatUser, Platform } from '../../core/context.ts';
import { isLanguage } from '../../core/i18n.ts';
import type {
  Persistence,
  StoredChat,
  StoredUser,
  Submission,
  SubmissionInput,
  UserKey,
} from '../../core/ports.ts';
import type { Database } from '../../db/database.ts';
import type { SubmissionRecord } from '../../db/submission-repository.ts';
import type { UserRecord } from '../../db/user-repository.ts';
import { sniffFormat } from '../../imaging/decode.ts';

/** File extension to store an upload under: its real format, `bin` for anything else. */
function extensionOf(bytes: Uint8Array): string {
  const f = sniffFormat(bytes);
  return f === 'jpeg'
    ? 'jpg'
    : ['png', 'gif', 'webp', 'tiff', 'avif', 'bmp', 'heic'].includes(f)
      ? f
      : 'bin';
}

/** The core's view of a stored user. */
function toStoredUser(platform: Platform, u: UserRecord): StoredUser {
  const lang = u.languageOverride;
  return {
    platform,
    userId: u.platformId,
    name: u.name ?? u.platformId,
    language: lang && isLanguage(lang) ? lang : null,
    role: u.role,
  };
}

/**
 * The core's persistence ports (`src/core/ports.ts`) over the Prisma database (`src/db/`): users,
 * chats and submissions in SQL, image bytes on disk by SHA-256. The core speaks in platform ids;
 * the database in its own numeric ids, looked up per call (one indexed query each).
 */
export function createPrismaPersistence(db: Database): Persistence {
  const userId = async (platform: Platform, platformId: string): Promise<number> => {
    const u = await db.users.findByPlatform(platform, platformId);
    if (!u) throw new Error(`user ${platform}:${platformId} is not stored`);
    return u.id;
  };
  const toSubmission = async (r: SubmissionRecord, key: UserKey): Promise<Submission> => {
    const chat = r.chatId === null ? undefined : await db.chats.get(r.chatId);
    return {
      id: String(r.id),
      platform: key.platform,
      userId: key.userId,
      chatId: chat?.platformId ?? '',
      messageId: r.platformMessageId ?? '',
      command: r.command,
      imageSha256: r.imageSha256,
      imagePath: r.imagePath,
      imageBytes: r.bytes,
      imageWidth: r.width,
      imageHeight: r.height,
      modelId: r.modelId,
      modelVersion: r.modelVersion,
      predictedClass: r.predictedClass,
      confidence: r.confidence,
      topK: r.topK,
      latencyMs: r.latencyMs ?? 0,
      errorCode: r.errorCode,
      createdAt: r.createdAt,
    };
  };
  return {
    users: {
      async upsert(platform: Platform, user: ChatUser): Promise<StoredUser> {
        const u = await db.users.upsertFromPlatform({
          platform,
          platformId: user.id,
          name: user.name,
          language: user.languageCode,
        });
        return toStoredUser(platform, u);
      },
      async setLanguage(user, language) {
        await db.users.setLanguageOverride(await userId(user.platform, user.userId), language);
      },
      async find(user) {
        const u = await db.users.findByPlatform(user.platform, user.userId);
        return u && toStoredUser(user.platform, u);
      },
      async setRole(user, role) {
        const u = await db.users.upsertFromPlatform({
          platform: user.platform,
          platformId: user.userId,
        });
        return toStoredUser(user.platform, await db.users.setRole(u.id, role));
      },
    },
    chats: {
      async upsert(platform: Platform, chat: ChatInfo): Promise<StoredChat> {
        const c = await db.chats.upsertFromPlatform({
          platform,
          platformId: chat.id,
          type: chat.type,
          title: chat.title,
        });
        return { platform, chatId: chat.id, type: chat.type, title: c.title, defaultModel: null };
      },
    },
    submissions: {
      async record(s: SubmissionInput): Promise<Submission> {
        const uid = await userId(s.platform, s.userId);
        const chat = await db.chats.findByPlatform(s.platform, s.chatId);
        const image =
          s.imageSha256 && s.imagePath && s.imageBytes !== null
            ? {
                sha256: s.imageSha256,
                path: s.imagePath,
                bytes: s.imageBytes,
                width: s.imageWidth ?? undefined,
                height: s.imageHeight ?? undefined,
              }
            : undefined;
        const base = {
          userId: uid,
          chatId: chat?.id,
          platformMessageId: s.messageId,
          command: s.command,
          image,
          latencyMs: Math.round(s.latencyMs),
        };
        const model = s.modelId
          ? { id: s.modelId, version: s.modelVersion ?? 'unknown' }
          : undefined;
        const rec =
          s.errorCode === null && model && s.predictedClass !== null && s.confidence !== null
            ? await db.submissions.recordSuccess({
                ...base,
                model,
                predictedClass: s.predictedClass,
                confidence: s.confidence,
                topK: s.topK ?? [],
              })
            : await db.submissions.recordRejection({
                ...base,
                model,
                errorCode: s.errorCode ?? 'internal',
              });
        return toSubmission(rec, { platform: s.platform, userId: s.userId });
      },
      async listRecent(user, limit) {
        const recs = await db.submissions.listRecentByUser(
          await userId(user.platform, user.userId),
          limit,
        );
        return Promise.all(recs.map((r) => toSubmission(r, user)));
      },
    },
    images: {
      async save(sha256, bytes) {
        const stored = await db.images.put(bytes, extensionOf(bytes));
        if (stored.sha256 !== sha256) throw new Error('image store computed a different SHA-256');
        return stored.relativePath;
      },
    },
  };
}
