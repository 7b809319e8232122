/**
 * Every bot process follows the `served_models` table: a promotion or rollback made anywhere
 * (a worker, another bot process, the CLI) is picked up within one poll, the new version loaded
 * and warmed before it answers, the old one disposed once its predictions end. A version trained
 * on another machine is written into this one's `DATA_DIR` from the database first.
 */
import type { Logger } from 'pino';
import type { ModelVersionRepository } from '../db/model-version-repository.ts';
import type { ModelRegistry } from '../ml/registry.ts';
import { materializeVersion, type VersionFolders } from './version-store.ts';

/** Polls after which a version whose folder could not be written is tried again. */
const MATERIALIZE_RETRY_POLLS = 10;

/** A running watcher. */
export interface ServedWatcher {
  /** Checks once now (also what each poll does); resolves when any switch is done. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts polling every `intervalMs`.
 * @example
 * const watcher = watchServedVersions(db.modelVersions, registry, logger, 3000, folders);
 * @param folders this machine's `MODELS_DIR` and `DATA_DIR` (versions are written there).
 */
export function watchServedVersions(
  repo: ModelVersionRepository,
  registry: Pick<ModelRegistry, 'serve' | 'servedVersion'>,
  logger: Logger,
  intervalMs: number,
  folders: VersionFolders,
): ServedWatcher {
  let running: Promise<void> | undefined;
  /** Per model: the version that failed, and when to try it again (never: a load failure). */
  const failed = new Map<string, { version: string; retryAt: number }>();

  async function syncOnce(): Promise<void> {
    const served = await repo.served();
    for (const [modelId, version] of served) {
      if (registry.servedVersion(modelId) === version) continue;
      const failure = failed.get(modelId);
      if (failure?.version === version && Date.now() < failure.retryAt) continue;
      let found: Awaited<ReturnType<typeof materializeVersion>>;
      try {
        found = await materializeVersion(repo, folders, modelId, version);
      } catch (e) {
        // Writing the folder from the database can fail for a moment (the database unreachable,
        // a full disk, another process swapping the same folder in): tried again a few polls on.
        failed.set(modelId, {
          version,
          retryAt: Date.now() + MATERIALIZE_RETRY_POLLS * intervalMs,
        });
        logger.error({ err: e, model: modelId, version }, 'cannot write the promoted version');
        continue;
      }
      if (found.source === 'database') {
        logger.info(
          { model: modelId, version, dir: found.dir },
          'model version written from the database',
        );
      }
      try {
        await registry.serve(modelId, version, found.source === 'shipped' ? undefined : found.dir);
        failed.delete(modelId);
        logger.info({ model: modelId, version }, 'serving model version');
      } catch (e) {
        // Keep answering with the old version; try again only when the row changes.
        failed.set(modelId, { version, retryAt: Number.POSITIVE_INFINITY });
        logger.error({ err: e, model: modelId, version }, 'cannot load the promoted version');
      }
    }
  }

  const sync = (): Promise<void> => {
    running ??= syncOnce()
      .catch((e: unknown) => logger.warn({ err: e }, 'checking served versions failed'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void sync(), intervalMs);
  timer.unref();
  return {
    sync,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
