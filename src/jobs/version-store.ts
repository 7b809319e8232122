/**
 * Model versions on disk and in the database: immutable folders `<DATA_DIR>/models/<id>/<n>/`
 * (model.json, weights, meta.json, history.json, history.png), the shipped `models/<id>/` as
 * version 0, and the decision to promote a finished job's version.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ModelVersionRecord, ModelVersionRepository } from '../db/model-version-repository.ts';
import type { JsonObject } from '../db/training-run-repository.ts';
import { readModelMeta } from '../ml/model-meta.ts';
import { SHIPPED_VERSION } from '../ml/registry.ts';

/** The folders versions live in. */
export interface VersionFolders {
  /** The shipped models (`MODELS_DIR`): version 0 of each. */
  readonly modelsDir: string;
  /** The data folder (`DATA_DIR`): versions under `models/`, job checkpoints under `jobs/`. */
  readonly dataDir: string;
}

/** `<DATA_DIR>/models/<id>/<version>`. */
export function versionDir(f: VersionFolders, modelId: string, version: string): string {
  return path.join(f.dataDir, 'models', modelId, version);
}

/** Where job `id` writes its model before it becomes a version (same file system: renamed). */
export function stagingDir(f: VersionFolders, modelId: string, jobId: number): string {
  return path.join(f.dataDir, 'models', modelId, `.job-${jobId}`);
}

/** Where job `id` keeps its per-epoch checkpoint (resumed after a dead worker). */
export function checkpointDir(f: VersionFolders, jobId: number): string {
  return path.join(f.dataDir, 'jobs', String(jobId), 'checkpoint');
}

/**
 * Registers the shipped `models/<id>/` as version 0 (once; its test accuracy from meta.json), so
 * that versions, rollback and comparisons have it.
 */
export async function ensureShippedVersion(
  repo: ModelVersionRepository,
  f: VersionFolders,
  modelId: string,
): Promise<ModelVersionRecord | undefined> {
  const found = await repo.get(modelId, SHIPPED_VERSION);
  if (found) return found;
  const dir = path.join(f.modelsDir, modelId);
  const meta = await readModelMeta(dir).catch(() => undefined);
  if (!meta) return undefined;
  return repo.register({
    modelId,
    version: SHIPPED_VERSION,
    path: dir,
    testAccuracy: meta.testAccuracy,
    createdBy: 'shipped',
    ...(meta.training ? { params: { ...meta.training } as JsonObject } : {}),
  });
}

/** The served version of a model and its test accuracy (version 0 unless promoted). */
export async function servedVersionOf(
  repo: ModelVersionRepository,
  f: VersionFolders,
  modelId: string,
): Promise<{ version: string; testAccuracy: number | null }> {
  const active = await repo.getActive(modelId);
  if (active) return { version: active.version, testAccuracy: active.testAccuracy };
  const shipped = await ensureShippedVersion(repo, f, modelId);
  return { version: SHIPPED_VERSION, testAccuracy: shipped?.testAccuracy ?? null };
}

/** What a finished job brings to {@link addVersion}. */
export interface FinishedJob {
  readonly jobId: number;
  readonly modelId: string;
  readonly stagingDir: string;
  readonly testAccuracy: number;
  readonly force: boolean;
  /**
   * issue 16: a decision of the job's own rule (a `with=class` job: the class held-out accuracy
   * improved and MNIST dropped at most 0.5 points), instead of comparing test accuracies.
   */
  readonly promote?: boolean;
  readonly params: JsonObject;
  readonly metrics: JsonObject;
  readonly datasetFingerprint: string;
  readonly createdBy: string;
}

/** What {@link addVersion} decided. */
export interface VersionDecision {
  readonly version: string;
  readonly servedVersion: string;
  readonly servedAccuracy: number | null;
  /** True when the new version is served now. */
  readonly promoted: boolean;
}

/**
 * Makes a finished job's folder the model's next version (a rename: the folder appears whole),
 * records it, and promotes it (one update of `served_models`) when its test accuracy is at least
 * the served version's (or when the job's own rule said so: `promote`), or when `force`.
 */
export async function addVersion(
  repo: ModelVersionRepository,
  f: VersionFolders,
  job: FinishedJob,
): Promise<VersionDecision> {
  const served = await servedVersionOf(repo, f, job.modelId);
  const version = String(await repo.nextVersion(job.modelId));
  const dir = versionDir(f, job.modelId, version);
  await rm(dir, { recursive: true, force: true }); // a half-renamed leftover of a crash
  await rename(job.stagingDir, dir);
  await repo.register({
    modelId: job.modelId,
    version,
    path: dir,
    testAccuracy: job.testAccuracy,
    jobId: job.jobId,
    parentVersion: served.version,
    metrics: job.metrics,
    datasetFingerprint: job.datasetFingerprint,
    params: job.params,
    createdBy: job.createdBy,
  });
  const promoted =
    job.force ||
    (job.promote ?? (served.testAccuracy === null || job.testAccuracy >= served.testAccuracy));
  if (promoted) await repo.activate(job.modelId, version);
  return {
    version,
    servedVersion: served.version,
    servedAccuracy: served.testAccuracy,
    promoted,
  };
}
