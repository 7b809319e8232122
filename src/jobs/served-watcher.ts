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
  const failed = new Map<string, string>();

  async function syncOnce(): Promise<void> {
    const served = await repo.served();
    for (const [modelId, version] of served) {
      if (registry.servedVersion(modelId) === version || failed.get(modelId) === version) continue;
      try {
        const found = await materializeVersion(repo, folders, modelId, version);
        if (found.source === 'database') {
          logger.info(
            { model: modelId, version, dir: found.dir },
            'model version written from the database',
          );
        }
        await registry.serve(modelId, version, found.source === 'shipped' ? undefined : found.dir);
        logger.info({ model: modelId, version }, 'serving model version');
      } catch (e) {
        // Keep answering with the old version; try again only when the row changes.
        failed.set(modelId, version);
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
