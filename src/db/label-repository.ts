/**
 * issue 16: labels of submissions' photos. Rows are only ever added (a label is a fact: who said
 * what about a photo, and when); the effective label is computed from them by the core.
 */
import type { AppPrismaClient } from './client.ts';
import { DatabaseError } from './errors.ts';
import { toSubmission, type SubmissionRecord } from './submission-repository.ts';
import type { Role } from './user-repository.ts';

/** Where a label came from (see `LabelSource` in the core's ports). */
export type LabelSourceName = 'confirmed' | 'corrected' | 'instructor';

/** A label as added. */
export interface NewLabel {
  readonly submissionId: number;
  /** Null only for an instructor's "exclude from training". */
  readonly label: string | null;
  /** The labeller (users.id); null for an import from the command line. */
  readonly userId: number | null;
  readonly role: Role;
  readonly source: LabelSourceName;
}

/** A stored label, with its labeller's platform identity. */
export interface LabelRecord extends NewLabel {
  readonly id: number;
  readonly createdAt: Date;
  readonly userPlatform: string | null;
  readonly userPlatformId: string | null;
}

/** A submission with the identities of its sender and chat, and its labels (oldest first). */
export interface LabelledSubmissionRecord extends SubmissionRecord {
  readonly userPlatform: string;
  readonly userPlatformId: string;
  readonly userName: string | null;
  readonly chatPlatformId: string | null;
  readonly labels: readonly LabelRecord[];
}

/** Filters of {@link LabelRepository.list}. */
export interface LabelledSubmissionFilter {
  /** Only classified photos (an image, a prediction, no error). */
  readonly classifiedOnly?: boolean;
  /** `chats.id`. */
  readonly chatId?: number;
  readonly from?: Date;
  readonly to?: Date;
  /** `submissions.id`. */
  readonly submissionId?: number;
  /** The platform message a submission answered (with {@link chatId}). */
  readonly platformMessageId?: string;
}

/** Labels and the submissions they refer to. */
export interface LabelRepository {
  add(label: NewLabel): Promise<LabelRecord>;
  /** Submissions matching the filter, oldest first, each with its labels. */
  list(filter?: LabelledSubmissionFilter): Promise<LabelledSubmissionRecord[]>;
  /** The id of the first submission of `command` with these image bytes, if any (re-imports). */
  findByImage(sha256: string, command: string): Promise<number | undefined>;
}

const ROLES: readonly string[] = ['student', 'instructor', 'admin'];
const SOURCES: readonly string[] = ['confirmed', 'corrected', 'instructor'];

/**
 * Creates the label repository over a Prisma client. The labels table has no Prisma relation
 * (its foreign keys are in the SQL migration), so the joins are two queries here.
 *
 * @example
 * await labels.add({ submissionId: 7, label: '4', userId: 3, role: 'student', source: 'corrected' });
 */
export function createLabelRepository(prisma: AppPrismaClient): LabelRepository {
  async function identities(ids: readonly number[]) {
    const users = await prisma.user.findMany({
      where: { id: { in: [...new Set(ids)] } },
      select: { id: true, platform: true, platformId: true, name: true },
    });
    return new Map(users.map((u) => [u.id, u]));
  }

  return {
    async add(l) {
      if (!ROLES.includes(l.role)) {
        throw new DatabaseError('invalid_argument', `unknown role "${l.role}"`);
      }
      if (!SOURCES.includes(l.source)) {
        throw new DatabaseError('invalid_argument', `unknown label source "${l.source}"`);
      }
      if (l.label === null && l.source !== 'instructor') {
        throw new DatabaseError('invalid_argument', 'only an instructor may exclude a photo');
      }
      const row = await prisma.label.create({ data: { ...l } });
      const who = l.userId === null ? undefined : (await identities([l.userId])).get(l.userId);
      return {
        id: row.id,
        submissionId: row.submissionId,
        label: row.label,
        userId: row.userId,
        role: l.role,
        source: l.source,
        createdAt: row.createdAt,
        userPlatform: who?.platform ?? null,
        userPlatformId: who?.platformId ?? null,
      };
    },

    async findByImage(sha256, command) {
      const row = await prisma.submission.findFirst({
        where: { imageSha256: sha256, command },
        orderBy: { id: 'asc' },
        select: { id: true },
      });
      return row?.id;
    },

    async list(filter = {}) {
      const rows = await prisma.submission.findMany({
        where: {
          ...(filter.submissionId !== undefined && { id: filter.submissionId }),
          ...(filter.chatId !== undefined && { chatId: filter.chatId }),
          ...(filter.platformMessageId !== undefined && {
            platformMessageId: filter.platformMessageId,
          }),
          ...((filter.from ?? filter.to) && {
            createdAt: {
              ...(filter.from && { gte: filter.from }),
              ...(filter.to && { lt: filter.to }),
            },
          }),
          ...(filter.classifiedOnly && {
            errorCode: null,
            imagePath: { not: null },
            predictedClass: { not: null },
          }),
        },
        orderBy: { id: 'asc' },
        include: {
          user: { select: { platform: true, platformId: true, name: true } },
          chat: { select: { platformId: true } },
        },
      });
      const labels =
        rows.length === 0
          ? []
          : await prisma.label.findMany({
              where: { submissionId: { in: rows.map((r) => r.id) } },
              orderBy: { id: 'asc' },
            });
      const who = await identities(labels.flatMap((l) => (l.userId === null ? [] : [l.userId])));
      const bySubmission = new Map<number, LabelRecord[]>();
      for (const l of labels) {
        const u = l.userId === null ? undefined : who.get(l.userId);
        const list = bySubmission.get(l.submissionId) ?? [];
        list.push({
          id: l.id,
          submissionId: l.submissionId,
          label: l.label,
          userId: l.userId,
          role: l.role as Role,
          source: l.source as LabelSourceName,
          createdAt: l.createdAt,
          userPlatform: u?.platform ?? null,
          userPlatformId: u?.platformId ?? null,
        });
        bySubmission.set(l.submissionId, list);
      }
      return rows.map((r) => ({
        ...toSubmission(r),
        userPlatform: r.user.platform,
        userPlatformId: r.user.platformId,
        userName: r.user.name,
        chatPlatformId: r.chat?.platformId ?? null,
        labels: bySubmission.get(r.id) ?? [],
      }));
    },
  };
}
