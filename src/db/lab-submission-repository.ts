/**
 * Lab submissions: each Keras model a student sent with `/check <task>`, the file's hash and
 * stored copy, its format and Keras version, every requirement's result (JSON), the test
 * accuracy once measured, parameters, MACs and the time the check took.
 */
import type { AppPrismaClient } from './client.ts';

/** A lab check to store. */
export interface NewLabSubmission {
  readonly userId: number;
  readonly chatId?: number | undefined;
  readonly task: string;
  readonly fileName?: string | undefined;
  readonly fileSha256: string;
  /** Relative to `DATA_DIR`, when the file was stored. */
  readonly filePath?: string | undefined;
  readonly fileBytes: number;
  readonly format: 'keras' | 'h5';
  readonly kerasVersion?: string | undefined;
  /** Each requirement's result, stored as JSON. */
  readonly requirements: readonly unknown[];
  readonly passed: number;
  readonly total: number;
  /** Top-1 accuracy on the task's test set, fraction; absent until measured. */
  readonly testAccuracy?: number | undefined;
  readonly params: number;
  readonly macs: number;
  readonly latencyMs: number;
}

/** A lab submission as stored. */
export interface LabSubmissionRecord {
  readonly id: number;
  readonly userId: number;
  readonly chatId: number | null;
  readonly task: string;
  readonly fileName: string | null;
  readonly fileSha256: string;
  readonly filePath: string | null;
  readonly fileBytes: number;
  readonly format: 'keras' | 'h5';
  readonly kerasVersion: string | null;
  readonly requirements: readonly unknown[];
  readonly passed: number;
  readonly total: number;
  readonly testAccuracy: number | null;
  readonly params: number;
  readonly macs: number;
  readonly latencyMs: number;
  readonly createdAt: Date;
}

/** A submission with who sent it, for the instructors' table. */
export interface LabSubmissionWithUser extends LabSubmissionRecord {
  readonly userPlatform: string;
  readonly userPlatformId: string;
  readonly userName: string | null;
}

/** Stored lab submissions. */
export interface LabSubmissionRepository {
  record(s: NewLabSubmission): Promise<LabSubmissionRecord>;
  /** Sets the test accuracy measured after the check (fraction). */
  setTestAccuracy(id: number, accuracy: number): Promise<void>;
  /** A user's submissions, newest first. */
  listByUser(userId: number, limit: number): Promise<LabSubmissionRecord[]>;
  /** Every submission (of one task), oldest first, with the users' identities. */
  listAll(task?: string): Promise<LabSubmissionWithUser[]>;
}

type Row = Awaited<ReturnType<AppPrismaClient['labSubmission']['create']>>;

function toRecord(r: Row): LabSubmissionRecord {
  let requirements: unknown[] = [];
  try {
    const parsed: unknown = JSON.parse(r.requirementsJson);
    if (Array.isArray(parsed)) requirements = parsed;
  } catch {
    // a damaged row keeps its other columns
  }
  return {
    id: r.id,
    userId: r.userId,
    chatId: r.chatId,
    task: r.task,
    fileName: r.fileName,
    fileSha256: r.fileSha256,
    filePath: r.filePath,
    fileBytes: r.fileBytes,
    format: r.format === 'h5' ? 'h5' : 'keras',
    kerasVersion: r.kerasVersion,
    requirements,
    passed: r.passed,
    total: r.total,
    testAccuracy: r.testAccuracy,
    params: r.params,
    macs: r.macs,
    latencyMs: r.latencyMs,
    createdAt: r.createdAt,
  };
}

/** The repository over a Prisma client (SQLite or PostgreSQL). */
export function createLabSubmissionRepository(prisma: AppPrismaClient): LabSubmissionRepository {
  return {
    async record(s) {
      const row = await prisma.labSubmission.create({
        data: {
          userId: s.userId,
          chatId: s.chatId ?? null,
          task: s.task,
          fileName: s.fileName ?? null,
          fileSha256: s.fileSha256,
          filePath: s.filePath ?? null,
          fileBytes: s.fileBytes,
          format: s.format,
          kerasVersion: s.kerasVersion ?? null,
          requirementsJson: JSON.stringify(s.requirements),
          passed: s.passed,
          total: s.total,
          testAccuracy: s.testAccuracy ?? null,
          params: s.params,
          macs: s.macs,
          latencyMs: Math.round(s.latencyMs),
        },
      });
      return toRecord(row);
    },
    async setTestAccuracy(id, accuracy) {
      await prisma.labSubmission.update({ where: { id }, data: { testAccuracy: accuracy } });
    },
    async listByUser(userId, limit) {
      const rows = await prisma.labSubmission.findMany({
        where: { userId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit,
      });
      return rows.map(toRecord);
    },
    async listAll(task) {
      const rows = await prisma.labSubmission.findMany({
        where: task === undefined ? {} : { task },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      const ids = [...new Set(rows.map((r) => r.userId))];
      const users = await prisma.user.findMany({ where: { id: { in: ids } } });
      const byId = new Map(users.map((u) => [u.id, u]));
      return rows.map((r) => {
        const u = byId.get(r.userId);
        return {
          ...toRecord(r),
          userPlatform: u?.platform ?? '',
          userPlatformId: u?.platformId ?? '',
          userName: u?.name ?? null,
        };
      });
    },
  };
}
