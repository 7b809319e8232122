import type { AppPrismaClient } from './client.ts';
import type { ImageStore } from './image-store.ts';

/** What {@link ImageRetention.prune} did (or, with `dryRun`, would do). */
export interface PruneResult {
  /** Distinct images (by SHA-256) whose files were deleted. */
  readonly images: number;
  /** Their size, bytes (as recorded with their submissions). */
  readonly bytes: number;
  /** Submission rows whose `imagePath` was cleared (they keep the hash and size). */
  readonly submissions: number;
  /** Expired images left alone because an instructor keeps them. */
  readonly kept: number;
}

/** Options of {@link ImageRetention.prune}. */
export interface PruneOptions {
  /** Images whose newest submission is older than this many days expire. */
  readonly olderThanDays: number;
  /** Reference time (default now). */
  readonly now?: Date;
  /** Report without deleting anything. */
  readonly dryRun?: boolean;
}

/**
 * The stored images' lifetime (issue 19): a per-user quota, the images instructors keep for
 * review, and the expiry of the rest. Image files are addressed by SHA-256 only (never by the
 * path stored in a row), so a tampered row cannot make the store delete anything else.
 */
export interface ImageRetention {
  /** Bytes of the distinct images stored for a user's submissions. */
  storedBytesOfUser(userId: number): Promise<number>;
  /** Keeps images past the retention period; returns how many were newly kept. */
  keep(sha256s: readonly string[], note?: string): Promise<number>;
  /** Lets kept images expire again; returns how many were released. */
  release(sha256s: readonly string[]): Promise<number>;
  /** SHA-256 of every kept image. */
  listKept(): Promise<string[]>;
  /**
   * Deletes the files of images whose newest submission is older than `olderThanDays` and that
   * nobody keeps, and clears `imagePath` in their rows (hash, size and outcome stay); the
   * copies attached to `with=class` jobs not yet run (`training_run_photos`) are deleted too, and
   * any copies left on a job that ended (a process stopped between its two statements).
   */
  prune(options: PruneOptions): Promise<PruneResult>;
}

const DAY_MS = 86_400_000;

/** `images/ab/cd/<sha>.jpg` -> `jpg`. */
function extensionOfPath(relative: string): string {
  return relative.slice(relative.lastIndexOf('.') + 1);
}

/**
 * Creates the retention service over the database and the image store.
 *
 * @example
 * const retention = createImageRetention(prisma, images);
 * const { images: deleted, bytes } = await retention.prune({ olderThanDays: 90 });
 */
export function createImageRetention(prisma: AppPrismaClient, store: ImageStore): ImageRetention {
  return {
    async storedBytesOfUser(userId) {
      const rows = await prisma.submission.findMany({
        where: { userId, imagePath: { not: null } },
        distinct: ['imageSha256'],
        select: { bytes: true },
      });
      return rows.reduce((sum, r) => sum + (r.bytes ?? 0), 0);
    },

    async keep(sha256s, note) {
      let added = 0;
      for (const sha256 of new Set(sha256s)) {
        store.relativePathOf(sha256, 'bin'); // validates the hash
        const existing = await prisma.keptImage.findUnique({ where: { sha256 } });
        if (existing) continue;
        await prisma.keptImage.create({ data: { sha256, note: note ?? null } });
        added++;
      }
      return added;
    },

    async release(sha256s) {
      const { count } = await prisma.keptImage.deleteMany({
        where: { sha256: { in: [...sha256s] } },
      });
      return count;
    },

    async listKept() {
      const rows = await prisma.keptImage.findMany({ orderBy: { createdAt: 'asc' } });
      return rows.map((r) => r.sha256);
    },

    async prune({ olderThanDays, now = new Date(), dryRun = false }) {
      const cutoff = new Date(now.getTime() - olderThanDays * DAY_MS);
      const newest = await prisma.submission.groupBy({
        by: ['imageSha256'],
        where: { imagePath: { not: null }, imageSha256: { not: null } },
        _max: { createdAt: true, bytes: true, imagePath: true },
      });
      const expired = newest.filter(
        (g) => g.imageSha256 !== null && g._max.createdAt !== null && g._max.createdAt < cutoff,
      );
      const kept = new Set(
        (
          await prisma.keptImage.findMany({
            where: { sha256: { in: expired.map((g) => g.imageSha256 ?? '') } },
            select: { sha256: true },
          })
        ).map((k) => k.sha256),
      );
      let images = 0;
      let bytes = 0;
      let submissions = 0;
      if (!dryRun) {
        // A run's copies are deleted in a second statement after the one that ended it: a process
        // stopped between the two leaves them on an ended run, removed here at the latest.
        const holding = await prisma.trainingRunPhoto.findMany({
          distinct: ['runId'],
          select: { runId: true },
        });
        const ended = await prisma.trainingRun.findMany({
          where: {
            id: { in: holding.map((h) => h.runId) },
            status: { in: ['succeeded', 'failed', 'cancelled'] },
          },
          select: { id: true },
        });
        await prisma.trainingRunPhoto.deleteMany({
          where: { runId: { in: ended.map((r) => r.id) } },
        });
      }
      for (const g of expired) {
        const sha256 = g.imageSha256 ?? '';
        if (kept.has(sha256)) continue;
        images++;
        bytes += g._max.bytes ?? 0;
        if (dryRun) {
          submissions += await prisma.submission.count({
            where: { imageSha256: sha256, imagePath: { not: null } },
          });
          continue;
        }
        await store.remove(sha256, extensionOfPath(g._max.imagePath ?? '.bin'));
        // issue 14 follow-up: a queued with=class job's copy expires with the photo.
        await prisma.trainingRunPhoto.deleteMany({ where: { sha256 } });
        const { count } = await prisma.submission.updateMany({
          where: { imageSha256: sha256, imagePath: { not: null } },
          data: { imagePath: null },
        });
        submissions += count;
      }
      return { images, bytes, submissions, kept: kept.size };
    },
  };
}
