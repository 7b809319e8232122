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
   * issue 14 follow-up: the folder's files, stored with the row in one transaction (replacing
   * any stored before), so that a process on another machine can write the folder again.
   */
  readonly files?: readonly VersionFile[] | undefined;
  /**
   * Create only: when the version is already registered (another worker took the number first)
   * nothing is changed and `DatabaseError('conflict')` is thrown, instead of the row's path and
   * files being replaced (a version is immutable: a bot may already serve those files).
   */
  readonly exclusive?: boolean | undefined;
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
  /** The next free version number of a model (1 when only the shipped 0 exists). */
  nextVersion(modelId: string): Promise<number>;
  /** The files stored with a version (none for old rows and the shipped version), by name. */
  storedFiles(modelId: string, version: string): Promise<StoredVersionFile[]>;
  /** The stored files with their bytes, by name. */
  readFiles(modelId: string, version: string): Promise<(StoredVersionFile & VersionFile)[]>;
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
      // One transaction: a version another process can see always has its files.
      const conflict = (): DatabaseError =>
        new DatabaseError('conflict', `model version ${v.modelId}@${v.version} already exists`);
      const transaction = prisma.$transaction(async (tx) => {
        const key = { modelId: v.modelId, version: v.version };
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
          for (const f of files) {
            await tx.modelVersionFile.create({
              data: {
                modelVersionId: r.id,
                name: f.name,
                sha256: f.sha256,
                size: f.size,
                bytes: new Uint8Array(f.bytes),
              },
            });
          }
        }
        return r;
      }, BULK_TRANSACTION);
      // Two creates of one number racing past the check: the unique index refuses the second.
      const row = await transaction.catch((e: unknown) => {
        throw isUniqueViolation(e) && v.exclusive === true ? conflict() : e;
      });
      return toModelVersion(row, await servedOf(v.modelId));
    },

    async activate(modelId, version, options) {
      const target = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
      });
      if (target === null) {
        throw new DatabaseError('not_found', `no model version ${modelId}@${version}`);
      }
      const expected = options?.ifServed;
      if (expected !== undefined) {
        const moved = new DatabaseError(
          'conflict',
          `${modelId}: the served version is no longer ${expected}`,
        );
        // One conditional statement each, so that a promotion racing it cannot be overwritten.
        const { count } = await prisma.servedModel.updateMany({
          where: { modelId, version: expected },
          data: { version },
        });
        if (count === 1) return toModelVersion(target, version);
        if (expected !== '0') throw moved;
        try {
          await prisma.servedModel.create({ data: { modelId, version } });
        } catch (e) {
          throw isUniqueViolation(e) ? moved : e;
        }
        return toModelVersion(target, version);
      }
      // The one write: bots poll this row and switch when it changes.
      await prisma.servedModel.upsert({
        where: { modelId },
        create: { modelId, version },
        update: { version },
      });
      return toModelVersion(target, version);
    },

    async getActive(modelId) {
      const version = await servedOf(modelId);
      if (version === undefined) return undefined;
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
      });
      return row === null ? undefined : toModelVersion(row, version);
    },

    async served() {
      const rows = await prisma.servedModel.findMany();
      return new Map(rows.map((r) => [r.modelId, r.version]));
    },

    async get(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
      });
      return row === null ? undefined : toModelVersion(row, await servedOf(modelId));
    },

    async list(modelId) {
      const rows = await prisma.modelVersion.findMany({
        where: modelId === undefined ? {} : { modelId },
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
      const numbers = rows.map((r) => Number(r.version)).filter((n) => Number.isInteger(n));
      return Math.max(0, ...numbers) + 1;
    },

    async storedFiles(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
        select: { id: true },
      });
      if (row === null) return [];
      return prisma.modelVersionFile.findMany({
        where: { modelVersionId: row.id },
        select: { name: true, sha256: true, size: true },
        orderBy: { name: 'asc' },
      });
    },

    async readFiles(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
        select: { id: true },
      });
      if (row === null) return [];
      const files = await prisma.modelVersionFile.findMany({
        where: { modelVersionId: row.id },
        select: { name: true, sha256: true, size: true, bytes: true },
        orderBy: { name: 'asc' },
      });
      return files.map((f) => ({ ...f, bytes: new Uint8Array(f.bytes) }));
    },
  };
}
