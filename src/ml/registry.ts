import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { findImagenetModel, modelDataDirs, type ExternalModel } from './imagenet.ts';
import { loadModel } from './model-io.ts';
import { readModelMeta, type ModelMeta } from './model-meta.ts';

/** A model ready for inference, with its metadata. */
export interface LoadedModel {
  readonly meta: ModelMeta;
  readonly model: tf.LayersModel;
  /** Folder the model was loaded from. */
  readonly dir: string;
  /**
   * The model version: `0` for the shipped `models/<id>/`, `n` for `<DATA_DIR>/models/<id>/<n>/`
   * (issue 14). Recorded with every answer it gives.
   */
  readonly version: string;
}

/** The version the shipped `models/<id>/` folder is. */
export const SHIPPED_VERSION = '0';

/** A loaded model and the calls using it now (so a replaced one is freed when they end). */
interface Entry {
  readonly loaded: Promise<LoadedModel>;
  users: number;
  retired: boolean;
}

/** Options of {@link ModelRegistry}. */
export interface ModelRegistryOptions {
  /**
   * Data folders searched for third-party models (`mobilenet-imagenet`, see `imagenet.ts`);
   * default none.
   */
  readonly dataDirs?: readonly string[];
}

/**
 * The models available in a models folder: every sub-folder holding `model.json` and `meta.json`
 * (`models/<id>/`; any TF.js layers model with such a metadata file), plus `mobilenet-imagenet`
 * when a data folder holds it. Models load on first use and stay in memory; loading is shared
 * between concurrent callers.
 */
export class ModelRegistry {
  private readonly loading = new Map<string, Entry>();
  /** Versions other than the shipped one that are served: id -> version and folder. */
  private readonly served = new Map<string, { version: string; dir: string }>();

  constructor(
    readonly modelsDir: string,
    private readonly options: ModelRegistryOptions = {},
  ) {}

  /**
   * The registry a configuration describes: `MODELS_DIR`, and `DATA_DIR` then `CNN_SHARED_DATA`
   * for third-party models.
   * @example
   * const registry = ModelRegistry.fromConfig(loadConfig());
   */
  static fromConfig(config: {
    readonly MODELS_DIR: string;
    readonly DATA_DIR: string;
    readonly CNN_SHARED_DATA?: string | undefined;
  }): ModelRegistry {
    return new ModelRegistry(config.MODELS_DIR, { dataDirs: modelDataDirs(config) });
  }

  /** Third-party models found in the data folders (none is in the models folder). */
  private async external(): Promise<ExternalModel[]> {
    const found = await findImagenetModel(this.options.dataDirs ?? []);
    return found ? [found] : [];
  }

  /**
   * Metadata of every valid model folder, sorted by id; invalid folders are skipped.
   */
  async list(): Promise<ModelMeta[]> {
    let names: string[];
    try {
      names = await readdir(this.modelsDir);
    } catch {
      return [];
    }
    const metas: ModelMeta[] = [];
    for (const name of names.sort()) {
      try {
        metas.push(await readModelMeta(path.join(this.modelsDir, name)));
      } catch {
        // not a model folder
      }
    }
    for (const { meta } of await this.external()) {
      if (!metas.some((m) => m.id === meta.id)) metas.push(meta);
    }
    return metas.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Loads (once) and returns the model `id`.
   * @throws {UserError} `model.unknown` when no such folder exists (the message lists the known
   *   ids), `model.missing_files` when its files are missing or unreadable.
   */
  get(id: string): Promise<LoadedModel> {
    return this.entry(id).loaded;
  }

  private entry(id: string): Entry {
    let e = this.loading.get(id);
    if (!e) {
      const loaded = this.load(id);
      const created: Entry = { loaded, users: 0, retired: false };
      e = created;
      this.loading.set(id, created);
      loaded.catch(() => {
        if (this.loading.get(id) === created) this.loading.delete(id);
      });
    }
    return e;
  }

  /**
   * Runs `fn` with the served version of model `id`, holding it: if a promotion replaces it
   * meanwhile, it is disposed only when the last such call ends (no prediction loses its
   * weights mid-way, and none is leaked).
   * @throws {UserError} as {@link get}.
   */
  async use<T>(id: string, fn: (loaded: LoadedModel) => Promise<T>): Promise<T> {
    const e = this.entry(id);
    e.users++;
    try {
      return await fn(await e.loaded);
    } finally {
      e.users--;
      if (e.retired && e.users === 0) void disposeEntry(e);
    }
  }

  /** The version of model `id` that answers now (`0`, the shipped one, unless promoted). */
  servedVersion(id: string): string {
    return this.served.get(id)?.version ?? SHIPPED_VERSION;
  }

  /**
   * Serves `version` of model `id` from `dir` (`SHIPPED_VERSION` with no `dir`: the shipped
   * folder): loads it and runs one prediction on zeros (so its kernels are compiled and its
   * weights uploaded) before switching, so no user waits for the load; the replaced version is
   * disposed once the calls using it end. A model not loaded yet is only recorded (loaded on
   * first use). Failures leave the served version as it was.
   * @throws {Error} when the new folder cannot be loaded.
   */
  async serve(id: string, version: string, dir?: string): Promise<void> {
    if (this.servedVersion(id) === version) return;
    const folder = version === SHIPPED_VERSION ? undefined : dir;
    if (version !== SHIPPED_VERSION && folder === undefined) {
      throw new Error(`serve ${id}@${version}: no folder given`);
    }
    const old = this.loading.get(id);
    if (!old) {
      this.setServed(id, version, folder);
      return;
    }
    const loaded = await this.loadFrom(id, version, folder);
    warmUp(loaded.model);
    this.setServed(id, version, folder);
    this.loading.set(id, { loaded: Promise.resolve(loaded), users: 0, retired: false });
    old.retired = true;
    if (old.users === 0) await disposeEntry(old);
  }

  private setServed(id: string, version: string, dir: string | undefined): void {
    if (dir === undefined) this.served.delete(id);
    else this.served.set(id, { version, dir });
  }

  /** Frees every loaded model's weights. */
  async dispose(): Promise<void> {
    const all = [...this.loading.values()];
    this.loading.clear();
    for (const e of all) await disposeEntry(e);
  }

  private async load(id: string): Promise<LoadedModel> {
    const known = (await this.list()).map((m) => m.id);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(id) || !known.includes(id)) {
      throw new UserError(
        'model.unknown',
        `unknown model "${id}"; known: ${known.join(', ') || 'none'}`,
        {
          model: id,
          known: known.join(', '),
        },
      );
    }
    const served = this.served.get(id);
    return this.loadFrom(id, served?.version ?? SHIPPED_VERSION, served?.dir);
  }

  /** Loads version `version` of `id` from `versionDir`, or the shipped folder without one. */
  private async loadFrom(
    id: string,
    version: string,
    versionDir: string | undefined,
  ): Promise<LoadedModel> {
    let dir: string;
    let meta: ModelMeta;
    if (versionDir !== undefined) {
      dir = versionDir;
      meta = await readModelMeta(dir);
    } else {
      const own = path.join(this.modelsDir, id);
      const external = (await this.external()).find((e) => e.meta.id === id);
      const inModels = await readModelMeta(own).then(
        (m) => m,
        () => undefined,
      );
      dir = inModels || !external ? own : external.dir;
      meta = inModels ?? external?.meta ?? (await readModelMeta(own));
    }
    try {
      const model = await loadModel(dir);
      return { meta, model, dir, version };
    } catch (e) {
      throw new UserError(
        'model.missing_files',
        `model "${id}" cannot be loaded: ${(e as Error).message}`,
        {
          model: id,
        },
      );
    }
  }
}

/** Frees an entry's model (a failed load holds nothing). */
async function disposeEntry(e: Entry): Promise<void> {
  try {
    (await e.loaded).model.dispose();
  } catch {
    // failed loads hold nothing
  }
}

/** One prediction on zeros of the model's input shape (batch 1), everything disposed. */
function warmUp(model: tf.LayersModel): void {
  const shape = model.inputs[0]?.shape.map((d) => d ?? 1) ?? [];
  tf.tidy(() => {
    const out = model.predict(tf.zeros(shape));
    (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
  });
}
