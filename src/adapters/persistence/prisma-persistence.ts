import type { ChatInfo, ChatUser, Platform } from '../../core/context.ts';
import { isLanguage } from '../../core/i18n.ts';
import type {
  LabSubmission,
  LabSubmissionInput,
  ClassDataFilter,
  LabelledSubmission,
  Persistence,
  StoredChat,
  StoredUser,
  Submission,
  SubmissionInput,
  UserKey,
} from '../../core/ports.ts';
import type { Database } from '../../db/database.ts';
import type { LabSubmissionRecord } from '../../db/lab-submission-repository.ts';
import type {
  LabelledSubmissionFilter,
  LabelledSubmissionRecord,
} from '../../db/label-repository.ts';
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

/** Options of {@link createPrismaPersistence}. */
export interface PrismaPersistenceOptions {
  /**
   * Most bytes of distinct images kept per user (`IMAGE_QUOTA_BYTES`); over it a photo is still
   * answered and recorded (hash, size) but its bytes are not kept. 0 or unset: no quota.
   */
  readonly imageQuotaBytes?: number;
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
export function createPrismaPersistence(
  db: Database,
  options: PrismaPersistenceOptions = {},
): Persistence {
  const userId = async (platform: Platform, platformId: string): Promise<number> => {
    const u = await db.users.findByPlatform(platform, platformId);
    if (!u) throw new Error(`user ${platform}:${platformId} is not stored`);
    return u.id;
  };
  /** A stored row in the core's terms, given its sender's and chat's platform ids. */
  const submissionOf = (r: SubmissionRecord, key: UserKey, chatId: string): Submission => ({
    id: String(r.id),
    platform: key.platform,
    userId: key.userId,
    chatId,
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
  });
  const toSubmission = async (r: SubmissionRecord, key: UserKey): Promise<Submission> => {
    const chat = r.chatId === null ? undefined : await db.chats.get(r.chatId);
    return submissionOf(r, key, chat?.platformId ?? '');
  };
  const toLabSubmission = async (
    r: LabSubmissionRecord,
    platform: Platform,
    platformUserId: string,
    userName: string | null,
  ): Promise<LabSubmission> => {
    const chat = r.chatId === null ? undefined : await db.chats.get(r.chatId);
    return {
      id: String(r.id),
      platform,
      userId: platformUserId,
      userName,
      chatId: chat?.platformId ?? '',
      task: r.task,
      fileName: r.fileName,
      fileSha256: r.fileSha256,
      filePath: r.filePath,
      fileBytes: r.fileBytes,
      format: r.format,
      kerasVersion: r.kerasVersion,
      requirements: r.requirements,
      passed: r.passed,
      total: r.total,
      testAccuracy: r.testAccuracy,
      params: r.params,
      macs: r.macs,
      latencyMs: r.latencyMs,
      createdAt: r.createdAt,
    };
  };
  const toLabelled = (r: LabelledSubmissionRecord): LabelledSubmission => ({
    ...submissionOf(
      r,
      { platform: r.userPlatform as Platform, userId: r.userPlatformId },
      r.chatPlatformId ?? '',
    ),
    userName: r.userName,
    labels: r.labels.map((l) => ({
      id: String(l.id),
      submissionId: String(l.submissionId),
      label: l.label,
      by:
        l.userPlatform === null || l.userPlatformId === null
          ? null
          : { platform: l.userPlatform as Platform, userId: l.userPlatformId },
      role: l.role,
      source: l.source,
      createdAt: l.createdAt,
    })),
  });
  /** The database filter of a core filter; undefined when the chat is not stored (no rows). */
  const dbFilter = async (
    f: ClassDataFilter,
    classifiedOnly: boolean,
  ): Promise<LabelledSubmissionFilter | undefined> => {
    let chatId: number | undefined;
    if (f.chatId !== undefined) {
      const chat = await db.chats.findByPlatform(f.platform ?? 'telegram', f.chatId);
      if (!chat) return undefined;
      chatId = chat.id;
    }
    return {
      classifiedOnly,
      ...(chatId === undefined ? {} : { chatId }),
      ...(f.from ? { from: f.from } : {}),
      ...(f.to ? { to: f.to } : {}),
    };
  };
  const listLabelled = async (f: ClassDataFilter, classifiedOnly: boolean) => {
    const filter = await dbFilter(f, classifiedOnly);
    if (!filter) return [];
    const rows = await db.labels.list(filter);
    return rows
      .filter((r) => f.platform === undefined || r.userPlatform === f.platform)
      .map(toLabelled);
  };

  return {
    classData: {
      async findByMessage(platform, chatId, messageId) {
        const chat = await db.chats.findByPlatform(platform, chatId);
        if (!chat) return undefined;
        const rows = await db.labels.list({
          classifiedOnly: true,
          chatId: chat.id,
          platformMessageId: messageId,
        });
        const row = rows.at(-1);
        return row && toLabelled(row);
      },
      async get(submissionId) {
        const id = Number(submissionId);
        if (!Number.isSafeInteger(id)) return undefined;
        const row = (await db.labels.list({ submissionId: id })).at(0);
        return row && toLabelled(row);
      },
      async addLabel(l) {
        const by =
          l.by === null ? undefined : await db.users.findByPlatform(l.by.platform, l.by.userId);
        const rec = await db.labels.add({
          submissionId: Number(l.submissionId),
          label: l.label,
          userId: by?.id ?? null,
          role: l.role,
          source: l.source,
        });
        return { ...l, id: String(rec.id), createdAt: rec.createdAt };
      },
      list: (filter = {}) => listLabelled(filter, true),
      listAll: (filter = {}) => listLabelled(filter, false),
      async readImage(imagePath) {
        const m = /^images\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})\.([a-z0-9]{1,5})$/.exec(
          imagePath,
        );
        const bytes = m ? await db.images.read(m[1]!, m[2]!) : undefined;
        if (!bytes) throw new Error(`image ${imagePath} is not stored`);
        return new Uint8Array(bytes);
      },
    },
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
        return {
          platform,
          chatId: chat.id,
          type: chat.type,
          title: c.title,
          defaultModel: c.defaultModel,
        };
      },
      async setDefaultModel(platform, chatId, model) {
        const c = await db.chats.findByPlatform(platform, chatId);
        if (!c) throw new Error(`chat ${platform}:${chatId} is not stored`);
        await db.chats.setDefaultModel(c.id, model);
      },
    },
    submissions: {
      async record(s: SubmissionInput): Promise<Submission> {
        const uid = await userId(s.platform, s.userId);
        const chat = await db.chats.findByPlatform(s.platform, s.chatId);
        const image =
          s.imageSha256 && s.imageBytes !== null
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
      async listRecent(user, limit, filter = {}) {
        let chatId: number | undefined;
        if (filter.chatId !== undefined) {
          const chat = await db.chats.findByPlatform(user.platform, filter.chatId);
          if (!chat) return [];
          chatId = chat.id;
        }
        const recs = await db.submissions.listRecentByUser(
          await userId(user.platform, user.userId),
          limit,
          chatId,
        );
        return Promise.all(recs.map((r) => toSubmission(r, user)));
      },
    },
    labSubmissions: {
      async record(s: LabSubmissionInput): Promise<LabSubmission> {
        const uid = await userId(s.platform, s.userId);
        const chat = await db.chats.findByPlatform(s.platform, s.chatId);
        const r = await db.labSubmissions.record({
          userId: uid,
          chatId: chat?.id,
          task: s.task,
          fileName: s.fileName ?? undefined,
          fileSha256: s.fileSha256,
          filePath: s.filePath ?? undefined,
          fileBytes: s.fileBytes,
          format: s.format,
          kerasVersion: s.kerasVersion ?? undefined,
          requirements: s.requirements,
          passed: s.passed,
          total: s.total,
          testAccuracy: s.testAccuracy ?? undefined,
          params: s.params,
          macs: s.macs,
          latencyMs: s.latencyMs,
        });
        const user = await db.users.get(uid);
        return { ...s, id: String(r.id), userName: user?.name ?? null, createdAt: r.createdAt };
      },
      async setTestAccuracy(id, accuracy) {
        await db.labSubmissions.setTestAccuracy(Number(id), accuracy);
      },
      async listByUser(user, limit) {
        const uid = await userId(user.platform, user.userId);
        const rows = await db.labSubmissions.listByUser(uid, limit);
        return Promise.all(rows.map((r) => toLabSubmission(r, user.platform, user.userId, null)));
      },
      async listAll(platform, task) {
        const rows = (await db.labSubmissions.listAll(task)).filter(
          (r) => r.userPlatform === platform,
        );
        return Promise.all(
          rows.map((r) => toLabSubmission(r, platform, r.userPlatformId, r.userName)),
        );
      },
    },
    images: {
      async save(sha256, bytes, owner) {
        const ext = extensionOf(bytes);
        const quota = options.imageQuotaBytes ?? 0;
        if (owner && quota > 0 && !(await db.images.has(sha256, ext))) {
          const used = await db.imageRetention.storedBytesOfUser(
            await userId(owner.platform, owner.userId),
          );
          if (used + bytes.length > quota) return null;
        }
        const stored = await db.images.put(bytes, ext);
        if (stored.sha256 !== sha256) throw new Error('image store computed a different SHA-256');
        return stored.relativePath;
      },
    },
  };
}
