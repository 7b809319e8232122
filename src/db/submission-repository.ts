import type { AppPrismaClient } from './client.ts';
import { toCsvLine, type CsvValue } from './csv.ts';
import { DatabaseError } from './errors.ts';

/** One entry of a prediction's top-k list. */
export interface TopKEntry {
  readonly classIndex: number;
  readonly label: string;
  readonly probability: number;
}

/** The stored photo a submission refers to. */
export interface SubmissionImage {
  readonly sha256: string;
  /**
   * Relative to `DATA_DIR` (see the image store); null when the bytes were not kept (a refused
   * upload, or one over its sender's quota: the hash and size are still recorded).
   */
  readonly path: string | null;
  readonly bytes: number;
  readonly width?: number | undefined;
  readonly height?: number | undefined;
}

interface NewSubmissionBase {
  readonly userId: number;
  readonly chatId?: number | undefined;
  readonly platformMessageId?: string | undefined;
  /** The command answered, e.g. `predict`. */
  readonly command: string;
  readonly image?: SubmissionImage | undefined;
  readonly latencyMs?: number | undefined;
}

/** A photo that was classified. */
export interface NewSuccessfulSubmission extends NewSubmissionBase {
  readonly model: { readonly id: string; readonly version: string };
  readonly predictedClass: string;
  readonly confidence: number;
  readonly topK: readonly TopKEntry[];
}

/** A photo that was refused, with the user error id (e.g. `image.pdf`). */
export interface NewRejectedSubmission extends NewSubmissionBase {
  readonly errorCode: string;
  readonly model?: { readonly id: string; readonly version: string } | undefined;
}

/** A submission as stored. */
export interface SubmissionRecord {
  readonly id: number;
  readonly userId: number;
  readonly chatId: number | null;
  readonly platformMessageId: string | null;
  readonly command: string;
  readonly imageSha256: string | null;
  readonly imagePath: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly bytes: number | null;
  readonly modelId: string | null;
  readonly modelVersion: string | null;
  readonly predictedClass: string | null;
  readonly confidence: number | null;
  readonly topK: readonly TopKEntry[] | null;
  readonly latencyMs: number | null;
  /** Set when the photo was rejected. */
  readonly errorCode: string | null;
  readonly createdAt: Date;
}

/** A row of the instructors' export: the submission and who sent it. */
export interface SubmissionExportRow extends SubmissionRecord {
  readonly userPlatform: string;
  readonly userPlatformId: string;
  readonly userName: string | null;
}

/** Filters for {@link SubmissionRepository.count}. */
export interface SubmissionCountFilter {
  readonly userId?: number | undefined;
  readonly outcome?: 'success' | 'rejected' | undefined;
}

/** The log of chat submissions. */
export interface SubmissionRepository {
  recordSuccess(submission: NewSuccessfulSubmission): Promise<SubmissionRecord>;
  recordRejection(submission: NewRejectedSubmission): Promise<SubmissionRecord>;
  /** A user's last `limit` submissions, newest first; with `chatId`, only those in that chat. */
  listRecentByUser(userId: number, limit: number, chatId?: number): Promise<SubmissionRecord[]>;
  count(filter?: SubmissionCountFilter): Promise<number>;
  /** Every submission, oldest first, read page by page: JSON objects, one per line. */
  exportJsonLines(): AsyncGenerator<string>;
  /** Every submission, oldest first, read page by page: a header line, then one CSV line each. */
  exportCsv(): AsyncGenerator<string>;
}

/** Column order of the CSV export. */
export const SUBMISSION_CSV_COLUMNS = [
  'id',
  'createdAt',
  'userId',
  'userPlatform',
  'userPlatformId',
  'userName',
  'chatId',
  'platformMessageId',
  'command',
  'imageSha256',
  'imagePath',
  'width',
  'height',
  'bytes',
  'modelId',
  'modelVersion',
  'predictedClass',
  'confidence',
  'topK',
  'latencyMs',
  'errorCode',
] as const satisfies readonly (keyof SubmissionExportRow)[];

const EXPORT_PAGE_SIZE = 500;

/** The columns of a `submissions` row, as Prisma returns them. */
export interface SubmissionRow {
  id: number;
  userId: number;
  chatId: number | null;
  platformMessageId: string | null;
  command: string;
  imageSha256: string | null;
  imagePath: string | null;
  width: number | null;
  height: number | null;
  bytes: number | null;
  modelId: string | null;
  modelVersion: string | null;
  predictedClass: string | null;
  confidence: number | null;
  topKJson: string | null;
  latencyMs: number | null;
  errorCode: string | null;
  createdAt: Date;
}

/** A Prisma submission row as a plain {@link SubmissionRecord}. */
export function toSubmission(row: SubmissionRow): SubmissionRecord {
  return {
    id: row.id,
    userId: row.userId,
    chatId: row.chatId,
    platformMessageId: row.platformMessageId,
    command: row.command,
    imageSha256: row.imageSha256,
    imagePath: row.imagePath,
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    modelId: row.modelId,
    modelVersion: row.modelVersion,
    predictedClass: row.predictedClass,
    confidence: row.confidence,
    topK: row.topKJson === null ? null : (JSON.parse(row.topKJson) as TopKEntry[]),
    latencyMs: row.latencyMs,
    errorCode: row.errorCode,
    createdAt: row.createdAt,
  };
}

function baseData(s: NewSubmissionBase) {
  return {
    userId: s.userId,
    chatId: s.chatId ?? null,
    platformMessageId: s.platformMessageId ?? null,
    command: s.command,
    imageSha256: s.image?.sha256 ?? null,
    imagePath: s.image?.path ?? null,
    width: s.image?.width ?? null,
    height: s.image?.height ?? null,
    bytes: s.image?.bytes ?? null,
    latencyMs: s.latencyMs === undefined ? null : Math.round(s.latencyMs),
  };
}

/**
 * Creates the submission repository over a Prisma client.
 *
 * @example
 * await submissions.recordSuccess({
 *   userId: user.id, command: 'predict', image: { sha256, path, bytes: 5123 },
 *   model: { id: 'lenet-mnist', version: '1' }, predictedClass: '7', confidence: 0.98,
 *   topK: [{ classIndex: 7, label: '7', probability: 0.98 }], latencyMs: 41,
 * });
 */
export function createSubmissionRepository(prisma: AppPrismaClient): SubmissionRepository {
  async function* exportRows(): AsyncGenerator<SubmissionExportRow> {
    let after = 0;
    for (;;) {
      const page = await prisma.submission.findMany({
        where: { id: { gt: after } },
        orderBy: { id: 'asc' },
        take: EXPORT_PAGE_SIZE,
        include: { user: { select: { platform: true, platformId: true, name: true } } },
      });
      for (const row of page) {
        yield {
          ...toSubmission(row),
          userPlatform: row.user.platform,
          userPlatformId: row.user.platformId,
          userName: row.user.name,
        };
      }
      const last = page.at(-1);
      if (last === undefined || page.length < EXPORT_PAGE_SIZE) return;
      after = last.id;
    }
  }

  return {
    async recordSuccess(s) {
      if (!(s.confidence >= 0 && s.confidence <= 1)) {
        throw new DatabaseError('invalid_argument', `confidence ${s.confidence} not in [0, 1]`);
      }
      const row = await prisma.submission.create({
        data: {
          ...baseData(s),
          modelId: s.model.id,
          modelVersion: s.model.version,
          predictedClass: s.predictedClass,
          confidence: s.confidence,
          topKJson: JSON.stringify(s.topK),
        },
      });
      return toSubmission(row);
    },

    async recordRejection(s) {
      if (s.errorCode === '') throw new DatabaseError('invalid_argument', 'empty error code');
      const row = await prisma.submission.create({
        data: {
          ...baseData(s),
          modelId: s.model?.id ?? null,
          modelVersion: s.model?.version ?? null,
          errorCode: s.errorCode,
        },
      });
      return toSubmission(row);
    },

    async listRecentByUser(userId, limit, chatId) {
      const rows = await prisma.submission.findMany({
        where: { userId, ...(chatId === undefined ? {} : { chatId }) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: Math.max(0, Math.floor(limit)),
      });
      return rows.map(toSubmission);
    },

    count(filter = {}) {
      return prisma.submission.count({
        where: {
          ...(filter.userId !== undefined && { userId: filter.userId }),
          ...(filter.outcome === 'success' && { errorCode: null }),
          ...(filter.outcome === 'rejected' && { errorCode: { not: null } }),
        },
      });
    },

    async *exportJsonLines() {
      for await (const row of exportRows()) yield `${JSON.stringify(row)}\n`;
    },

    async *exportCsv() {
      yield toCsvLine(SUBMISSION_CSV_COLUMNS);
      for await (const row of exportRows()) {
        yield toCsvLine(
          SUBMISSION_CSV_COLUMNS.map((column): CsvValue => {
            const value = row[column];
            return column === 'topK'
              ? value === null
                ? null
                : JSON.stringify(value)
              : (value as CsvValue);
          }),
        );
      }
    },
  };
}
