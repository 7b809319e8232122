import { createHash } from 'node:crypto';
import type { AppPrismaClient } from './client.ts';
import { DatabaseError } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import type { JsonObject } from './training-run-repository.ts';

/**
 * issue 14 follow-up: a transaction that writes file bytes (a version's ~22 MB of AlexNet
 * weights, a class's photos) may take seconds on a busy machine: Prisma's default 5 s limit for
 * an interactive transaction would fail it half-way (rolled back, the job failed).
 */
export const BULK_TRANSACTION = { maxWait: 10_000, timeout: 300_000 } as const;

/**
 * Largest part of a stored file, bytes. A new version's files are written a part per statement,
 * each its own short transaction: on SQLite one 22 MB transaction held the write lock for about
 * a second (every submission and label waited behind it); a 1 MiB part holds it for a few ms.
 */
export const FILE_PART_BYTES = 1024 * 1024;

/**
 * A trained model's files, as registered. Versions are immutable folders; which one the bots
 * answer with is a separate alias, one row per model in `served_models` (as TF Serving's and
 * MLflow's aliases), so that promotion and rollback are each one update of that row.
 */
export interface ModelVersionRecord {
  readonly id: number;
  /** Registry id, e.g. `lenet-mnist`. */
  readonly modelId: string;
  /** `0` for the shipped model, then `1`, `2`... */
  readonly version: string;
  /** Folder holding `model.json` and `meta.json`. */
  readonly path: string;
  /** Accuracy on the model's full test set, 0..1. */
  readonly testAccuracy: number | null;
  /** True for the version the bots serve. */
  readonly active: boolean;
  readonly createdAt: Date;
  /** The training run that made it; null for the shipped version. */
  readonly jobId: number | null;
  /** The version it was trained from (served when the job was queued). */
  readonly parentVersion: string | null;
  readonly metrics: JsonObject | null;
  /** SHA-256 over the data set files it was trained on. */
  readonly datasetFingerprint: string | null;
  /** The job's parameters as asked (epochs, batch, learning rate...). */
  readonly params: JsonObject | null;
  /** `platform:id` of who asked for it, or `cli`. */
  readonly createdBy: string | null;
}

/** What {@link ModelVersionRepository.register} needs. */
export interface NewModelVersion {
  readonly modelId: string;
  readonly version: string;
  readonly path: string;
  readonly testAccuracy?: number | undefined;
  readonly jobId?: number | undefined;
  readonly parentVersion?: string | undefined;
  readonly metrics?: JsonObject | undefined;
  readonly datasetFingerprint?: string | undefined;
  readonly params?: JsonObject | undefined;
  readonly createdBy?: string | undefined;
  /**
   * issue 14 follow-up: the folder's files, stored with the row (replacing any stored before),
   * so that a process on another machine can write the folder again. With `exclusive` they are
   * written in parts of {@link FILE_PART_BYTES}, each in a short transaction, under a row that
   * stays pending (seen by no reader) until the last part is in; otherwise in one transaction.
   */
  readonly files?: readonly VersionFile[] | undefined;
  /**
   * Create only: when the version is already registered (another worker took the number first)
   * nothing is changed and `DatabaseError('conflict')` is thrown, instead of the row's path and
   * files being replaced (a version is immutable: a bot may already serve those files).
   */
  readonly exclusive?: boolean | undefined;
  /**
   * The worker's lease on the job that made the version (with `exclusive` and `files`): the row
   * becomes visible only if the job is still running under this owner's lease (renewed in the
   * same transaction), else the pending row and its parts are deleted and
   * `DatabaseError('lease_lost')` is thrown: a job failed (its lease expired, no tries left) or
   * taken over by another worker while this one stored its files never shows a version. A job
   * still this worker's but asked to cancel meanwhile: `DatabaseError('cancelled')`, likewise
   * nothing recorded (the worker then marks the job cancelled).
   */
  readonly lease?: VersionLease | undefined;
}

/** A worker's hold on the job whose version it stores (see {@link NewModelVersion.lease}). */
export interface VersionLease {
  readonly jobId: number;
  readonly owner: string;
  /** The lease's length, ms: renewed from the moment the version becomes visible. */
  readonly leaseMs: number;
}

/** Options of {@link ModelVersionRepository.activate}. */
export interface ActivateOptions {
  /**
   * Move the alias only if this version is still the served one (`'0'` also matches a model
   * nothing was promoted for); otherwise nothing changes and `DatabaseError('conflict')` is
   * thrown: a rollback decided against one served version must not undo a promotion made since.
   */
  readonly ifServed?: string | undefined;
}

/** One file of a version's folder. */
export interface VersionFile {
  /** Path inside the folder, `/`-separated (`model.json`, `group1-shard1of1.bin`...). */
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** A stored file's name, SHA-256 (lower-case hex) and size in bytes, without its bytes. */
export interface StoredVersionFile {
  readonly name: string;
  readonly sha256: string;
  readonly size: number;
}

/** What {@link ModelVersionRepository.remove} checks in its transaction before deleting. */
export interface RemoveGuard {
  /**
   * The served version the removal was decided against (`'0'`: nothing promoted): when another
   * one is served now, nothing is deleted (`conflict`): the version to go back to has changed.
   */
  readonly servedIs: string;
  /** A running job of the model that may be ignored (the worker pruning after its own job). */
  readonly exceptJobId?: number | undefined;
  /**
   * The reporter's window, ms: a version whose job still has a chat to report to and ended
   * within it (its curves are not sent yet) is not deleted (`conflict`). Absent: not checked.
   */
  readonly reportWithinMs?: number | undefined;
}

/** A pending row removed by {@link ModelVersionRepository.removeAbandoned}. */
export interface AbandonedVersion {
  readonly modelId: string;
  readonly version: string;
  readonly jobId: number;
  /** The job's state when its row was removed (`failed`, `cancelled`, `succeeded`, `queued`, or `missing`). */
  readonly jobStatus: string;
  /** Stored files (whole or in part) and their bytes in the database. */
  readonly files: number;
  readonly bytes: number;
}

/** A version's row as {@link ModelVersionRepository.footprint} sees it, pending ones included. */
export interface VersionFootprint {
  readonly modelId: string;
  readonly version: string;
  readonly path: string;
  readonly jobId: number | null;
  /** The version served when it was added (the one the bots answered with until it was promoted). */
  readonly parentVersion: string | null;
  /** Its files are still being written (or a crashed worker left it so). */
  readonly pending: boolean;
  /** Stored files, and their bytes in the database. */
  readonly files: number;
  readonly bytes: number;
}

/** Registered model versions and which one is served. */
export interface ModelVersionRepository {
  /** Registers a version, or updates path and accuracy of one registered before. */
  register(version: NewModelVersion): Promise<ModelVersionRecord>;
  /**
   * Serves `version` of its model from now on: one upsert of the model's `served_models` row,
   * which every bot process polls.
   * @throws {DatabaseError} `not_found` when the version was never registered.
   */
  activate(
    modelId: string,
    version: string,
    options?: ActivateOptions,
  ): Promise<ModelVersionRecord>;
  getActive(modelId: string): Promise<ModelVersionRecord | undefined>;
  /** The served version of every model that has one (`modelId -> version`). */
  served(): Promise<Map<string, string>>;
  get(modelId: string, version: string): Promise<ModelVersionRecord | undefined>;
  /** All versions, of one model or of all, oldest first. */
  list(modelId?: string): Promise<ModelVersionRecord[]>;
  /**
   * The next free version number of a model (1 when only the shipped 0 exists): above every
   * row (pending ones too) and every number a training run recorded (a pruned version's too).
   */
  nextVersion(modelId: string): Promise<number>;
  /** The files stored with a version (none for old rows and the shipped version), by name. */
  storedFiles(modelId: string, version: string): Promise<StoredVersionFile[]>;
  /** The stored files with their bytes, by name. */
  readFiles(modelId: string, version: string): Promise<(StoredVersionFile & VersionFile)[]>;
  /** One stored file with its bytes (the reporter's `history.png`), without the others. */
  readFile(
    modelId: string,
    version: string,
    name: string,
  ): Promise<(StoredVersionFile & VersionFile) | undefined>;
  /**
   * Every version row of a model (or of all), pending ones included, with its stored files'
   * count and bytes, oldest number first: what retention decides on.
   */
  footprint(modelId?: string): Promise<VersionFootprint[]>;
  /**
   * Deletes a version's row and its stored files in one transaction, after checking there that
   * it is not version 0, not served, that `guard.servedIs` is still the served version, and that
   * no job of the model is running (but `guard.exceptJobId`): a running job may train from it.
   * @returns the stored files and bytes deleted; undefined when the row was gone already.
   * @throws {DatabaseError} `conflict` when a check fails (nothing deleted).
   */
  remove(
    modelId: string,
    version: string,
    guard: RemoveGuard,
  ): Promise<{ files: number; bytes: number } | undefined>;
  /**
   * Deletes the pending rows (and their stored parts) whose job is not running: a worker that
   * crashed, or whose job failed or was taken over while it stored the files, left them, and no
   * reader will ever see them. Each row in a transaction of its own that reads the job's state
   * again; a row whose job runs (its worker may be storing it now) and a row without a job are
   * left alone (`versions prune` decides on those).
   * @returns the rows removed, with the bytes their parts held.
   */
  removeAbandoned(): Promise<AbandonedVersion[]>;
}

interface ModelVersionRow {
  id: number;
  modelId: string;
  version: string;
  path: string;
  testAccuracy: number | null;
  createdAt: Date;
  jobId: number | null;
  parentVersion: string | null;
  metricsJson: string | null;
  datasetFingerprint: string | null;
  paramsJson: string | null;
  createdBy: string | null;
}

/** The shipped version's number: never removed. */
const SHIPPED = '0';

/** A file's bytes cut in parts of at most {@link FILE_PART_BYTES} (one empty part for an empty file). */
function partsOf(bytes: Uint8Array): Uint8Array<ArrayBuffer>[] {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 0; at === 0 || at < bytes.length; at += FILE_PART_BYTES) {
    parts.push(new Uint8Array(bytes.subarray(at, at + FILE_PART_BYTES)));
  }
  return parts;
}

/**
 * Files and bytes held by stored parts (each part is {@link FILE_PART_BYTES} but a file's last),
 * from their names and their files' sizes alone: a file with fewer parts than its size needs
 * (a worker stopped half-way) counts its full parts only.
 */
function storedBytes(parts: readonly { name: string; size: number }[]): {
  files: number;
  bytes: number;
} {
  const byName = new Map<string, { size: number; parts: number }>();
  for (const p of parts) {
    const f = byName.get(p.name) ?? { size: p.size, parts: 0 };
    byName.set(p.name, { size: f.size, parts: f.parts + 1 });
  }
  let bytes = 0;
  for (const f of byName.values()) bytes += Math.min(f.size, f.parts * FILE_PART_BYTES);
  return { files: byName.size, bytes };
}

/** Stored parts (ordered by name, then part) joined into whole files. */
function joinParts(
  rows: readonly { name: string; part: number; sha256: string; size: number; bytes: Uint8Array }[],
): (StoredVersionFile & VersionFile)[] {
  const files: (StoredVersionFile & VersionFile)[] = [];
  for (let i = 0; i < rows.length;) {
    const first = rows[i];
    if (first === undefined) break;
    let end = i;
    let length = 0;
    for (; end < rows.length && rows[end]?.name === first.name; end++) {
      length += rows[end]?.bytes.length ?? 0;
    }
    const bytes = new Uint8Array(length);
    for (let at = 0; i < end; i++) {
      const part = rows[i]?.bytes ?? new Uint8Array();
      bytes.set(part, at);
      at += part.length;
    }
    files.push({ name: first.name, sha256: first.sha256, size: first.size, bytes });
  }
  return files;
}

const parse = (json: string | null): JsonObject | null =>
  json === null ? null : (JSON.parse(json) as JsonObject);

function toModelVersion(
  row: ModelVersionRow,
  servedVersion: string | undefined,
): ModelVersionRecord {
  return {
    id: row.id,
    modelId: row.modelId,
    version: row.version,
    path: row.path,
    testAccuracy: row.testAccuracy,
    active: servedVersion === row.version,
    createdAt: row.createdAt,
    jobId: row.jobId,
    parentVersion: row.parentVersion,
    metrics: parse(row.metricsJson),
    datasetFingerprint: row.datasetFingerprint,
    params: parse(row.paramsJson),
    createdBy: row.createdBy,
  };
}

/**
 * Creates the model version repository over a Prisma client.
 *
 * @example
 * await modelVersions.register({ modelId: 'lenet-mnist', version: '2', path: 'data/models/lenet-mnist/2' });
 * await modelVersions.activate('lenet-mnist', '2');
 */
export function createModelVersionRepository(prisma: AppPrismaClient): ModelVersionRepository {
  async function servedOf(modelId: string): Promise<string | undefined> {
    const row = await prisma.servedModel.findUnique({ where: { modelId } });
    return row?.version;
  }

  return {
    async register(v) {
      const fields = {
        path: v.path,
        testAccuracy: v.testAccuracy ?? null,
        jobId: v.jobId ?? null,
        parentVersion: v.parentVersion ?? null,
        metricsJson: v.metrics === undefined ? null : JSON.stringify(v.metrics),
        datasetFingerprint: v.datasetFingerprint ?? null,
        paramsJson: v.params === undefined ? null : JSON.stringify(v.params),
        createdBy: v.createdBy ?? null,
      };
      const files = (v.files ?? []).map((f) => ({
        name: f.name,
        sha256: createHash('sha256').update(f.bytes).digest('hex'),
        size: f.bytes.length,
        bytes: f.bytes,
      }));
      const conflict = (): DatabaseError =>
        new DatabaseError('conflict', `model version ${v.modelId}@${v.version} already exists`);
      const key = { modelId: v.modelId, version: v.version };
      const unique = (e: unknown): never => {
        throw isUniqueViolation(e) && v.exclusive === true ? conflict() : e;
      };
      const partRows = (modelVersionId: number) =>
        files.flatMap((f) =>
          partsOf(f.bytes).map((bytes, part) => ({
            modelVersionId,
            name: f.name,
            part,
            sha256: f.sha256,
            size: f.size,
            bytes,
          })),
        );
      if (v.exclusive === true && v.files !== undefined) {
        // The number is claimed by a pending row (a create: the unique index refuses a second),
        // the parts follow one short transaction each, and the row becomes visible last: no
        // reader ever sees it without every file, and other writers wait milliseconds, not 1 s.
        const claimed = await prisma.modelVersion
          .create({ data: { ...key, ...fields, pending: true } })
          .catch(unique);
        const removed = (): DatabaseError =>
          new DatabaseError(
            'removed',
            `model version ${v.modelId}@${v.version} was removed while its files were stored (its job ended: a prune or a worker's clean-up took the pending row)`,
          );
        try {
          for (const data of partRows(claimed.id)) {
            try {
              await prisma.modelVersionFile.create({ data });
            } catch (e) {
              // The row went (its files' foreign key refuses the part): say so, not the driver.
              const still = await prisma.modelVersion
                .count({ where: { id: claimed.id } })
                .catch(() => 1);
              throw still === 0 ? removed() : e;
            }
          }
          const row = await prisma.$transaction(async (tx) => {
            const lease = v.lease;
            if (lease !== undefined) {
              // A conditional renewal: it also holds the job's row, so a claim failing an expired
              // lease waits for this transaction and then finds the lease renewed, or wins first.
              const now = new Date();
              // Not after a cancel was asked for (`/cancel` answered "cancelled" already).
              const { count } = await tx.trainingRun.updateMany({
                where: {
                  id: lease.jobId,
                  status: 'running',
                  leaseOwner: lease.owner,
                  cancelRequested: false,
                },
                data: { heartbeatAt: now, leaseExpiresAt: new Date(now.getTime() + lease.leaseMs) },
              });
              if (count === 0) {
                const run = await tx.trainingRun.findUnique({
                  where: { id: lease.jobId },
                  select: { status: true, leaseOwner: true, cancelRequested: true },
                });
                if (run?.status === 'running' && run.leaseOwner === lease.owner) {
                  throw new DatabaseError(
                    'cancelled',
                    `job ${lease.jobId} was cancelled while its version ${v.modelId}@${v.version} was stored: the version is discarded`,
                  );
                }
                throw new DatabaseError(
                  'lease_lost',
                  `job ${lease.jobId} is ${run?.status ?? 'gone'}${run?.leaseOwner ? ` (leased by ${run.leaseOwner})` : ''}, no longer run by ${lease.owner}: its version ${v.modelId}@${v.version} is discarded`,
                );
              }
            }
            const { count } = await tx.modelVersion.updateMany({
              where: { id: claimed.id, pending: true },
              data: { pending: false },
            });
            if (count === 0) throw removed();
            return tx.modelVersion.findUniqueOrThrow({ where: { id: claimed.id } });
          });
          return toModelVersion(row, await servedOf(v.modelId));
        } catch (e) {
          // Nothing half-stored is left behind (the files go with the row); the number is free.
          // With the database gone the row stays pending, unseen, until retention removes it.
          await prisma.modelVersion.delete({ where: { id: claimed.id } }).catch(() => undefined);
          throw e;
        }
      }
      // One transaction: a version another process can see always has its files.
      const transaction = prisma.$transaction(async (tx) => {
        if (
          v.exclusive === true &&
          (await tx.modelVersion.findUnique({ where: { modelId_version: key } }))
        ) {
          throw conflict();
        }
        const r = v.exclusive
          ? await tx.modelVersion.create({ data: { ...key, ...fields } })
          : await tx.modelVersion.upsert({
              where: { modelId_version: key },
              create: { ...key, ...fields },
              update: { path: v.path, testAccuracy: fields.testAccuracy },
            });
        if (v.files !== undefined) {
          await tx.modelVersionFile.deleteMany({ where: { modelVersionId: r.id } });
          // One row at a time: a driver need not hold every shard in one statement.
          for (const data of partRows(r.id)) await tx.modelVersionFile.create({ data });
        }
        return r;
      }, BULK_TRANSACTION);
      // Two creates of one number racing past the check: the unique index refuses the second.
      const row = await transaction.catch(unique);
      return toModelVersion(row, await servedOf(v.modelId));
    },

    async activate(modelId, version, options) {
      const target = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
      });
      if (target === null) {
        throw new DatabaseError('not_found', `no model version ${modelId}@${version}`);
      }
      const expected = options?.ifServed;
      const moved = new DatabaseError(
        'conflict',
        `${modelId}: the served version is no longer ${expected ?? '?'}`,
      );
      // The alias is written first, then the target is checked in the same transaction by an
      // update of its row: a removal of it (`remove`, which deletes before it checks the alias)
      // either waits for this one and sees the alias on it, or wins, and this one is undone.
      await prisma.$transaction(async (tx) => {
        if (expected !== undefined) {
          // One conditional statement each, so that a promotion racing it cannot be overwritten.
          const { count } = await tx.servedModel.updateMany({
            where: { modelId, version: expected },
            data: { version },
          });
          if (count === 0) {
            if (expected !== '0') throw moved;
            try {
              await tx.servedModel.create({ data: { modelId, version } });
            } catch (e) {
              throw isUniqueViolation(e) ? moved : e;
            }
          }
        } else {
          // The one write: bots poll this row and switch when it changes.
          await tx.servedModel.upsert({
            where: { modelId },
            create: { modelId, version },
            update: { version },
          });
        }
        const still = await tx.modelVersion.updateMany({
          where: { id: target.id, pending: false },
          data: { pending: false },
        });
        if (still.count === 0) {
          throw new DatabaseError('not_found', `no model version ${modelId}@${version}`);
        }
      });
      return toModelVersion(target, version);
    },

    async getActive(modelId) {
      const version = await servedOf(modelId);
      if (version === undefined) return undefined;
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
      });
      return row === null ? undefined : toModelVersion(row, version);
    },

    async served() {
      const rows = await prisma.servedModel.findMany();
      return new Map(rows.map((r) => [r.modelId, r.version]));
    },

    async get(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
      });
      return row === null ? undefined : toModelVersion(row, await servedOf(modelId));
    },

    async list(modelId) {
      const rows = await prisma.modelVersion.findMany({
        where: modelId === undefined ? { pending: false } : { modelId, pending: false },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      const served = new Map(
        (await prisma.servedModel.findMany()).map((r) => [r.modelId, r.version]),
      );
      return rows.map((r) => toModelVersion(r, served.get(r.modelId)));
    },

    async nextVersion(modelId) {
      const rows = await prisma.modelVersion.findMany({
        where: { modelId },
        select: { version: true },
      });
      // A version retention removed keeps its number: its job (and the submissions it answered)
      // still name it, so a new version never takes it again.
      const runs = await prisma.trainingRun.findMany({
        where: { modelId, version: { not: null } },
        select: { version: true },
      });
      const numbers = [...rows, ...runs]
        .map((r) => Number(r.version))
        .filter((n) => Number.isInteger(n));
      return Math.max(0, ...numbers) + 1;
    },

    async storedFiles(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
        select: { id: true },
      });
      if (row === null) return [];
      return prisma.modelVersionFile.findMany({
        where: { modelVersionId: row.id, part: 0 },
        select: { name: true, sha256: true, size: true },
        orderBy: { name: 'asc' },
      });
    },

    async readFiles(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
        select: { id: true },
      });
      if (row === null) return [];
      return joinParts(
        await prisma.modelVersionFile.findMany({
          where: { modelVersionId: row.id },
          select: { name: true, part: true, sha256: true, size: true, bytes: true },
          orderBy: [{ name: 'asc' }, { part: 'asc' }],
        }),
      );
    },

    async readFile(modelId, version, name) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version }, pending: false },
        select: { id: true },
      });
      if (row === null) return undefined;
      const [file] = joinParts(
        await prisma.modelVersionFile.findMany({
          where: { modelVersionId: row.id, name },
          select: { name: true, part: true, sha256: true, size: true, bytes: true },
          orderBy: { part: 'asc' },
        }),
      );
      return file;
    },

    async footprint(modelId) {
      const rows = await prisma.modelVersion.findMany({
        where: modelId === undefined ? {} : { modelId },
        select: {
          id: true,
          modelId: true,
          version: true,
          path: true,
          jobId: true,
          parentVersion: true,
          pending: true,
        },
      });
      // Sizes from each file's first part (they carry the whole file's size), never the bytes.
      const sizes = await prisma.modelVersionFile.findMany({
        where: { part: 0, modelVersionId: { in: rows.map((r) => r.id) } },
        select: { modelVersionId: true, size: true },
      });
      const byRow = new Map<number, { files: number; bytes: number }>();
      for (const f of sizes) {
        const t = byRow.get(f.modelVersionId) ?? { files: 0, bytes: 0 };
        byRow.set(f.modelVersionId, { files: t.files + 1, bytes: t.bytes + f.size });
      }
      return rows
        .map(({ id, ...r }) => ({ ...r, ...(byRow.get(id) ?? { files: 0, bytes: 0 }) }))
        .sort(
          (a, b) =>
            a.modelId.localeCompare(b.modelId) ||
            Number(a.version) - Number(b.version) ||
            a.version.localeCompare(b.version),
        );
    },

    async remove(modelId, version, guard) {
      const refuse = (why: string): never => {
        throw new DatabaseError('conflict', `${modelId}@${version} is kept: ${why}`);
      };
      if (version === SHIPPED) refuse('the shipped version');
      return prisma.$transaction(async (tx) => {
        const row = await tx.modelVersion.findUnique({
          where: { modelId_version: { modelId, version } },
          select: { id: true, jobId: true },
        });
        if (row === null) return undefined;
        const { jobId } = row;
        const files = await tx.modelVersionFile.findMany({
          where: { modelVersionId: row.id, part: 0 },
          select: { size: true },
        });
        // Deleted first, checked after: an `activate` moving the alias to it meanwhile either
        // finished (the alias read below is on it: refused, undone) or waits on the row and
        // finds it gone (undone there).
        // The files go with the row (ON DELETE CASCADE): one statement, one transaction.
        const { count } = await tx.modelVersion.deleteMany({ where: { id: row.id } });
        if (count === 0) return undefined; // another prune removed it first
        const served =
          (await tx.servedModel.findUnique({ where: { modelId } }))?.version ?? SHIPPED;
        if (served === version) refuse('it is served');
        if (served !== guard.servedIs) refuse(`version ${served} is served now`);
        const running = await tx.trainingRun.findFirst({
          where: {
            modelId,
            status: 'running',
            ...(guard.exceptJobId === undefined ? {} : { id: { not: guard.exceptJobId } }),
          },
          select: { id: true },
        });
        if (running) refuse(`job ${running.id} of the model is running`);
        if (guard.reportWithinMs !== undefined && jobId !== null) {
          const unreported = await tx.trainingRun.findFirst({
            where: {
              id: jobId,
              notifyJson: { not: null },
              OR: [
                { status: { in: ['queued', 'running'] } },
                { finishedAt: { gte: new Date(Date.now() - guard.reportWithinMs) } },
              ],
            },
            select: { id: true },
          });
          if (unreported) refuse(`job ${jobId}'s report (its curves) is not sent yet`);
        }
        return { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
      });
    },

    async removeAbandoned() {
      const pending = await prisma.modelVersion.findMany({
        where: { pending: true, jobId: { not: null } },
        select: { id: true, modelId: true, version: true, jobId: true },
        orderBy: { id: 'asc' },
      });
      const removed: AbandonedVersion[] = [];
      for (const p of pending) {
        const jobId = p.jobId ?? 0;
        const done = await prisma.$transaction(async (tx) => {
          // Read again here: a job running now may be storing this very row (left alone).
          const run = await tx.trainingRun.findUnique({
            where: { id: jobId },
            select: { status: true },
          });
          if (run?.status === 'running') return undefined;
          // The parts stored, without their bytes: a crash may have left a file half-written.
          const parts = await tx.modelVersionFile.findMany({
            where: { modelVersionId: p.id },
            select: { name: true, size: true },
          });
          const { count } = await tx.modelVersion.deleteMany({
            where: { id: p.id, pending: true },
          });
          if (count === 0) return undefined;
          return { jobStatus: run?.status ?? 'missing', ...storedBytes(parts) };
        });
        if (done) removed.push({ modelId: p.modelId, version: p.version, jobId, ...done });
      }
      return removed;
    },
  };
}
