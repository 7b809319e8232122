import type { AppPrismaClient } from './client.ts';
import { DatabaseError } from './errors.ts';

/** A trained model's files, as registered. */
export interface ModelVersionRecord {
  readonly id: number;
  /** Registry id, e.g. `lenet-mnist`. */
  readonly modelId: string;
  readonly version: string;
  /** Folder holding `model.json` and `meta.json`. */
  readonly path: string;
  readonly testAccuracy: number | null;
  /** The version the bot answers with; at most one per model (a unique index enforces it). */
  readonly active: boolean;
  readonly createdAt: Date;
}

/** What {@link ModelVersionRepository.register} needs. */
export interface NewModelVersion {
  readonly modelId: string;
  readonly version: string;
  readonly path: string;
  readonly testAccuracy?: number | undefined;
}

/** Registered model versions and which one is active. */
export interface ModelVersionRepository {
  /** Registers a version, or updates path and accuracy of one registered before. */
  register(version: NewModelVersion): Promise<ModelVersionRecord>;
  /** Makes one version the active one of its model (and no other), atomically. */
  activate(modelId: string, version: string): Promise<ModelVersionRecord>;
  getActive(modelId: string): Promise<ModelVersionRecord | undefined>;
  get(modelId: string, version: string): Promise<ModelVersionRecord | undefined>;
  /** All versions, of one model or of all, oldest first. */
  list(modelId?: string): Promise<ModelVersionRecord[]>;
}

function toModelVersion(row: ModelVersionRecord): ModelVersionRecord {
  return {
    id: row.id,
    modelId: row.modelId,
    version: row.version,
    path: row.path,
    testAccuracy: row.testAccuracy,
    active: row.active,
    createdAt: row.createdAt,
  };
}

/**
 * Creates the model version repository over a Prisma client.
 *
 * @example
 * await modelVersions.register({ modelId: 'lenet-mnist', version: '2', path: 'models/lenet-mnist' });
 * await modelVersions.activate('lenet-mnist', '2');
 */
export function createModelVersionRepository(prisma: AppPrismaClient): ModelVersionRepository {
  return {
    async register(v) {
      const testAccuracy = v.testAccuracy ?? null;
      const row = await prisma.modelVersion.upsert({
        where: { modelId_version: { modelId: v.modelId, version: v.version } },
        create: { modelId: v.modelId, version: v.version, path: v.path, testAccuracy },
        update: { path: v.path, testAccuracy },
      });
      return toModelVersion(row);
    },

    async activate(modelId, version) {
      const row = await prisma.$transaction(async (tx) => {
        const target = await tx.modelVersion.findUnique({
          where: { modelId_version: { modelId, version } },
        });
        if (target === null) {
          throw new DatabaseError('not_found', `no model version ${modelId}@${version}`);
        }
        // Deactivate first: the partial unique index allows one active row per model.
        await tx.modelVersion.updateMany({
          where: { modelId, active: true, NOT: { id: target.id } },
          data: { active: false },
        });
        return tx.modelVersion.update({ where: { id: target.id }, data: { active: true } });
      });
      return toModelVersion(row);
    },

    async getActive(modelId) {
      const row = await prisma.modelVersion.findFirst({ where: { modelId, active: true } });
      return row === null ? undefined : toModelVersion(row);
    },

    async get(modelId, version) {
      const row = await prisma.modelVersion.findUnique({
        where: { modelId_version: { modelId, version } },
      });
      return row === null ? undefined : toModelVersion(row);
    },

    async list(modelId) {
      const rows = await prisma.modelVersion.findMany({
        where: modelId === undefined ? {} : { modelId },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      return rows.map(toModelVersion);
    },
  };
}
