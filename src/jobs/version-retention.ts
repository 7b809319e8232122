/**
 * Retention of model versions: over a term instructors retrain again and again, and every
 * version keeps its files twice (the database's `model_version_files` and a folder under
 * `DATA_DIR`). Pruning keeps the newest `keep` trained versions of a model and always the ones
 * someone may still need, and deletes the others: row and stored files in one transaction per
 * version, then the folder (`versions prune` on the command line, `MODEL_VERSIONS_KEEP` after
 * each job).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { KeptReason } from '../core/training.ts';
import type { Database } from '../db/database.ts';
import { DatabaseError } from '../db/errors.ts';
import type { AbandonedVersion, VersionFootprint } from '../db/model-version-repository.ts';
import { REPORT_WINDOW_MS } from '../db/training-run-repository.ts';
import { SHIPPED_VERSION } from '../ml/registry.ts';
import { stagingDir, versionDir, type VersionFolders } from './version-store.ts';

/** What {@link pruneVersions} does. */
export interface PruneOptions {
  /** One model; absent: every model with versions. */
  readonly modelId?: string | undefined;
  /** How many of the newest trained versions to keep besides the protected ones (>= 0). */
  readonly keep: number;
  /** Report what would be removed; change nothing. */
  readonly dryRun?: boolean | undefined;
  /** The job whose version was just added (the worker's own, still `running`): not a blocker. */
  readonly afterJobId?: number | undefined;
}

/** A version removed (or, in a dry run, that would be). */
export interface PrunedVersion {
  readonly modelId: string;
  readonly version: string;
  /** Stored files and their bytes in the database. */
  readonly files: number;
  readonly dbBytes: number;
  /** Bytes of its folder under `DATA_DIR` (0 when this machine has none). */
  readonly diskBytes: number;
}

/** A version kept, and why. */
export interface KeptVersion {
  readonly modelId: string;
  readonly version: string;
  readonly reason: KeptReason;
}

/** What {@link pruneVersions} did. */
export interface PruneReport {
  readonly dryRun: boolean;
  readonly keep: number;
  readonly removed: readonly PrunedVersion[];
  readonly kept: readonly KeptVersion[];
  /** Versions left alone because a check in their transaction failed (served changed...). */
  readonly skipped: readonly { modelId: string; version: string; reason: string }[];
  /** Totals over `removed`. */
  readonly dbBytes: number;
  readonly diskBytes: number;
}

/** Total bytes of the plain files in a folder (a version folder is flat); 0 when it is missing. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isFile()) total += (await stat(path.join(dir, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * The folders of a version on this machine: `<DATA_DIR>/models/<id>/<n>/`, and the row's
 * recorded path when it is another folder right inside `<DATA_DIR>/models/<id>/` (older rows). Nothing
 * outside `DATA_DIR` (the shipped `models/`, a path from elsewhere) is ever deleted.
 */
function foldersOf(f: VersionFolders, v: VersionFootprint): string[] {
  // Only a version's own folder, `<n>` right under `<DATA_DIR>/models/<id>/`: a row's version or
  // path naming the model's folder, `..`, another version's `<m>` or a job's staging `.job-N`
  // (a row no worker wrote) never makes a served version's folder, or another model's, go.
  if (!/^[a-z0-9][a-z0-9-]*$/.test(v.modelId) || !/^\d+$/.test(v.version)) return [];
  const own = versionDir(f, v.modelId, v.version);
  const root = path.resolve(f.dataDir, 'models', v.modelId);
  const recorded = path.resolve(v.path);
  return recorded !== path.resolve(own) &&
    path.dirname(recorded) === root &&
    !/^(\.|\d+$)/.test(path.basename(recorded))
    ? [own, recorded]
    : [own];
}

/** Decides, for one model's rows (numeric order), which to keep and which to remove. */
function plan(
  rows: readonly VersionFootprint[],
  served: string,
  keep: number,
  running: readonly number[],
  unreported: ReadonlySet<number>,
): { kept: KeptVersion[]; remove: VersionFootprint[] } {
  const visible = rows.filter((r) => !r.pending);
  // The rule of `rollback` without a version: the one before the served one, in number order.
  const at = visible.findIndex((r) => r.version === served);
  const rollbackTo = at > 0 ? visible[at - 1]?.version : undefined;
  const previous = visible[at]?.parentVersion ?? undefined;
  const recent = new Set(
    visible
      .filter((r) => r.version !== SHIPPED_VERSION)
      .slice(keep === 0 ? visible.length : -keep)
      .map((r) => r.version),
  );
  const kept: KeptVersion[] = [];
  const remove: VersionFootprint[] = [];
  for (const r of rows) {
    const reason: KeptReason | undefined =
      r.version === SHIPPED_VERSION
        ? 'shipped'
        : r.version === served
          ? 'served'
          : r.version === rollbackTo
            ? 'rollback'
            : r.version === previous
              ? 'previous'
              : running.length > 0 || (r.jobId !== null && running.includes(r.jobId))
                ? 'job'
                : recent.has(r.version)
                  ? 'recent'
                  : r.jobId !== null && unreported.has(r.jobId)
                    ? 'report'
                    : undefined;
    if (reason) kept.push({ modelId: r.modelId, version: r.version, reason });
    else remove.push(r);
  }
  return { kept, remove };
}

/**
 * Deletes old versions of one model or of all: keeps version 0, the served version, the one a
 * `/rollback` without a version would go back to, the newest `keep` trained versions, every
 * version of a model while one of its jobs runs (the job trains from the version served when it
 * started, which may be any of them, and its own version may be being stored), and a version
 * whose job's report (its learning curves) is not sent to its chat yet; a pending row a
 * crashed worker left is removed. Each removal is one transaction (row and stored files) that
 * checks again that the version is not served and the served version has not changed; only then
 * is its folder under `DATA_DIR` deleted. A bot serving a version keeps it (never removed); a
 * bot on another machine keeps its own folder of a removed version until it is deleted there.
 * @throws {Error} when the database cannot be read: nothing is deleted then.
 */
export async function pruneVersions(
  db: Pick<Database, 'modelVersions' | 'trainingRuns'>,
  f: VersionFolders,
  o: PruneOptions,
): Promise<PruneReport> {
  if (!Number.isInteger(o.keep) || o.keep < 0) {
    throw new RangeError(`keep must be a whole number >= 0, not ${o.keep}`);
  }
  const rows = await db.modelVersions.footprint(o.modelId);
  const served = await db.modelVersions.served();
  const runningJobs = (await db.trainingRuns.listForDisplay(0)).filter(
    (r) => r.status === 'running' && r.id !== o.afterJobId,
  );
  // Jobs whose chat has not had its final report yet: their versions' curves are still to send.
  const unreported = new Set(
    (await db.trainingRuns.listToReport(REPORT_WINDOW_MS)).map((r) => r.id),
  );
  const models = [...new Set(rows.map((r) => r.modelId))];
  const kept: KeptVersion[] = [];
  const removed: PrunedVersion[] = [];
  const skipped: { modelId: string; version: string; reason: string }[] = [];
  for (const modelId of models) {
    const servedNow = served.get(modelId) ?? SHIPPED_VERSION;
    const running = runningJobs.filter((r) => r.modelId === modelId).map((r) => r.id);
    const p = plan(
      rows.filter((r) => r.modelId === modelId),
      servedNow,
      o.keep,
      running,
      unreported,
    );
    kept.push(...p.kept);
    for (const v of p.remove) {
      const folders = foldersOf(f, v);
      let diskBytes = 0;
      for (const dir of folders) diskBytes += await folderBytes(dir);
      if (o.dryRun !== true) {
        try {
          await db.modelVersions.remove(modelId, v.version, {
            servedIs: servedNow,
            exceptJobId: o.afterJobId,
            reportWithinMs: REPORT_WINDOW_MS,
          });
        } catch (e) {
          if (!(e instanceof DatabaseError && e.code === 'conflict')) throw e;
          skipped.push({ modelId, version: v.version, reason: e.message });
          continue;
        }
        // The row is gone: no process looks for this folder any more.
        for (const dir of folders) await rm(dir, { recursive: true, force: true });
      }
      removed.push({
        modelId,
        version: v.version,
        files: v.files,
        dbBytes: v.bytes,
        diskBytes,
      });
    }
  }
  return {
    dryRun: o.dryRun === true,
    keep: o.keep,
    removed,
    kept,
    skipped,
    dbBytes: removed.reduce((n, r) => n + r.dbBytes, 0),
    diskBytes: removed.reduce((n, r) => n + r.diskBytes, 0),
  };
}

/**
 * Removes what workers that stopped left behind: the pending rows (and their stored parts) of
 * jobs that no longer run (the worker crashed while storing, or its job failed or was taken
 * over meanwhile), and those jobs' staging folders on this machine. Workers call it when they
 * start and after each job, so a crashed worker's tens of megabytes go without a `versions
 * prune`; a row whose job runs is never touched (its worker may be storing it now). Logs one
 * line per row with the bytes freed.
 * @returns the rows removed; never throws (a failure is logged and left for the next call).
 */
export async function sweepAbandonedVersions(
  db: Pick<Database, 'modelVersions'>,
  f: VersionFolders,
  log: Pick<Logger, 'info' | 'warn'>,
): Promise<AbandonedVersion[]> {
  try {
    const removed = await db.modelVersions.removeAbandoned();
    for (const v of removed) {
      await rm(stagingDir(f, v.modelId, v.jobId), { recursive: true, force: true });
      log.info(
        {
          model: v.modelId,
          version: v.version,
          job: v.jobId,
          jobStatus: v.jobStatus,
          files: v.files,
          dbBytes: v.bytes,
        },
        `removed the unfinished version ${v.modelId}@${v.version} that job ${v.jobId} (${v.jobStatus}) left pending: ${v.bytes} bytes freed in the database`,
      );
    }
    return removed;
  } catch (e) {
    log.warn({ err: e }, 'removing unfinished versions failed (tried again after the next job)');
    return [];
  }
}
