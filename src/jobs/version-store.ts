/**
 * Model versions on disk and in the database: immutable folders `<DATA_DIR>/models/<id>/<n>/`
 * (model.json, weights, meta.json, history.json, history.png), the shipped `models/<id>/` as
 * version 0, and the decision to promote a finished job's version.
 *
 * issue 14 follow-up: a version's files are also stored in the database with its row
 * (`model_version_files`), so a bot on another machine than the worker that trained it writes
 * the folder again from there ({@link materializeVersion}); the database is all they share.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type {
  ModelVersionRecord,
  ModelVersionRepository,
  StoredVersionFile,
  VersionFile,
  VersionLease,
} from '../db/model-version-repository.ts';
import { DatabaseError } from '../db/errors.ts';
import type { JsonObject } from '../db/training-run-repository.ts';
import { exists } from '../io/files.ts';
import { writeDirAtomically } from '../ml/model-io.ts';
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
  /**
   * The worker's lease on the job: the version becomes visible only while the job still runs
   * under it (see `NewModelVersion.lease`); absent: not checked (the command line's own runs).
   */
  readonly lease?: VersionLease;
}

/** What {@link addVersion} decided. */
export interface VersionDecision {
  readonly version: string;
  readonly servedVersion: string;
  readonly servedAccuracy: number | null;
  /** True when the new version is served now. */
  readonly promoted: boolean;
}

/** How many version numbers {@link addVersion} tries when other workers take them first. */
const MAX_VERSION_TRIES = 20;

/**
 * Makes a finished job's folder the model's next version (a rename: the folder appears whole),
 * records it (with `lease`, only while the job is still the worker's: else
 * `DatabaseError('lease_lost' | 'removed' | 'cancelled')`, nothing recorded), and promotes it (one update of `served_models`) when its test accuracy is at least
 * the served version's (or when the job's own rule said so: `promote`), or when `force`.
 */
export async function addVersion(
  repo: ModelVersionRepository,
  f: VersionFolders,
  job: FinishedJob,
): Promise<VersionDecision> {
  const served = await servedVersionOf(repo, f, job.modelId);
  const files = await readFolderFiles(job.stagingDir);
  /** Registers the next free number, the next one again when another worker took it first. */
  const claimVersion = async (
    modelId: string,
    register: (version: string) => Promise<void>,
  ): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      const version = String(await repo.nextVersion(modelId));
      try {
        await register(version);
        return version;
      } catch (e) {
        const taken = e instanceof DatabaseError && e.code === 'conflict';
        if (!taken || attempt >= MAX_VERSION_TRIES) throw e;
      }
    }
  };
  // The number is claimed in the database first (a create, never a replace): two workers on
  // two machines finishing at once both read the same next number, and the second one's files
  // must not replace a version a bot may already serve; it takes the number after.
  const version = await claimVersion(job.modelId, async (v) => {
    await repo.register({
      files,
      exclusive: true,
      modelId: job.modelId,
      version: v,
      path: versionDir(f, job.modelId, v),
      testAccuracy: job.testAccuracy,
      jobId: job.jobId,
      parentVersion: served.version,
      metrics: job.metrics,
      datasetFingerprint: job.datasetFingerprint,
      params: job.params,
      createdBy: job.createdBy,
      ...(job.lease ? { lease: job.lease } : {}),
    });
  });
  // Nobody reads the folder before the promotion below (and any machine can write it again
  // from the database): the staging folder is renamed into place, a crash's leftover removed.
  const dir = versionDir(f, job.modelId, version);
  await rm(dir, { recursive: true, force: true });
  await rename(job.stagingDir, dir);
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

/**
 * The files of a version's folder, by name (a version folder is flat: model.json, weight shards,
 * meta.json, history.json, history.png).
 * @throws {Error} when the folder holds a sub-folder (it could not be written back).
 */
export async function readFolderFiles(dir: string): Promise<VersionFile[]> {
  const files: VersionFile[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory())
      throw new Error(`${dir}: a version folder holds files only, found ${e.name}/`);
    if (e.isFile()) files.push({ name: e.name, bytes: await readFile(path.join(dir, e.name)) });
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A stored name that is one plain file name; anything that could leave the folder is refused. */
function checkedName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new Error(`unsafe file name in model_version_files: "${name}"`);
  }
  return name;
}

/** True when every stored file is in `dir` with its size and SHA-256. */
async function folderMatches(dir: string, stored: readonly StoredVersionFile[]): Promise<boolean> {
  for (const f of stored) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(dir, checkedName(f.name)));
    } catch {
      return false;
    }
    if (bytes.length !== f.size || sha256Of(bytes) !== f.sha256) return false;
  }
  return true;
}

/** Where {@link materializeVersion} found a version's folder. */
export interface MaterializedVersion {
  readonly dir: string;
  /**
   * `shipped`: the repository's `models/<id>/`; `local`: this machine's copy matched the stored
   * files; `database`: written now from the stored files; `path`: an old row without stored
   * files, its recorded path as it is.
   */
  readonly source: 'shipped' | 'local' | 'database' | 'path';
}

/**
 * The folder to load version `version` of `modelId` from on this machine. A version with stored
 * files lives in `<DATA_DIR>/models/<id>/<n>/`; when that folder is missing, or a file there is
 * missing or differs from its stored SHA-256 (a corrupted copy), it is written again from the
 * database: into a temporary folder beside it, each file checked against its SHA-256, then
 * renamed into place (a reader never sees half a folder; a stale copy is moved aside first and
 * deleted). The shipped version 0 is `models/<id>/`; an old row without stored files is its path.
 * @throws {Error} when the version is not registered, or a stored file's bytes do not match
 *   their SHA-256 (the database copy is damaged: nothing is written).
 */
export async function materializeVersion(
  repo: ModelVersionRepository,
  f: VersionFolders,
  modelId: string,
  version: string,
): Promise<MaterializedVersion> {
  if (version === SHIPPED_VERSION) {
    return { dir: path.join(f.modelsDir, modelId), source: 'shipped' };
  }
  const record = await repo.get(modelId, version);
  if (!record) throw new Error(`no model version ${modelId}@${version}`);
  const stored = await repo.storedFiles(modelId, version);
  if (stored.length === 0) {
    if (!(await exists(path.join(record.path, 'model.json')))) {
      throw new Error(`${modelId}@${version}: ${record.path} is missing and no files are stored`);
    }
    return { dir: record.path, source: 'path' };
  }
  const dir = versionDir(f, modelId, version);
  if (await folderMatches(dir, stored)) return { dir, source: 'local' };

  const files = await repo.readFiles(modelId, version);
  for (const file of files) {
    if (file.bytes.length !== file.size || sha256Of(file.bytes) !== file.sha256) {
      throw new Error(`${modelId}@${version}: stored ${file.name} does not match its SHA-256`);
    }
  }
  try {
    // Temporary folder beside it, flushed, then swapped in (the damaged copy moved away first).
    await writeDirAtomically(
      dir,
      files.map((file) => [checkedName(file.name), file.bytes] as const),
    );
  } catch (e) {
    // Another process on this machine may have swapped its own copy in at the same moment.
    if (await folderMatches(dir, stored)) return { dir, source: 'local' };
    throw e;
  }
  return { dir, source: 'database' };
}

/**
 * One file of a version (the reporter's `history.png`), without writing the version's folder:
 * this machine's copy when it matches the stored SHA-256, else the stored bytes alone (the
 * weight shards, 22 MB for AlexNet, are neither read nor written). The shipped version 0 reads
 * `models/<id>/`; an old row without stored files its recorded path.
 * @returns undefined when the version or the file is not there.
 * @throws {Error} when the stored bytes do not match their SHA-256.
 */
export async function readVersionFile(
  repo: ModelVersionRepository,
  f: VersionFolders,
  modelId: string,
  version: string,
  name: string,
): Promise<Uint8Array | undefined> {
  const fromDisk = (dir: string): Promise<Buffer | undefined> =>
    readFile(path.join(dir, checkedName(name))).catch(() => undefined);
  if (version === SHIPPED_VERSION) return fromDisk(path.join(f.modelsDir, modelId));
  const stored = (await repo.storedFiles(modelId, version)).find((s) => s.name === name);
  if (!stored) {
    const record = await repo.get(modelId, version);
    return record && fromDisk(record.path);
  }
  const local = await fromDisk(versionDir(f, modelId, version));
  if (local && local.length === stored.size && sha256Of(local) === stored.sha256) return local;
  const file = await repo.readFile(modelId, version, name);
  if (!file) return undefined;
  if (file.bytes.length !== file.size || sha256Of(file.bytes) !== file.sha256) {
    throw new Error(`${modelId}@${version}: stored ${name} does not match its SHA-256`);
  }
  return file.bytes;
}
