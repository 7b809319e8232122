import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
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
  private readonly loading = new Map<string, Promise<LoadedModel>>();

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
    let p = this.loading.get(id);
    if (!p) {
      p = this.load(id);
      this.loading.set(id, p);
      p.catch(() => this.loading.delete(id));
    }
    return p;
  }

  /** Frees every loaded model's weights. */
  async dispose(): Promise<void> {
    const all = [...this.loading.values()];
    this.loading.clear();
    for (const p of all) {
      try {
        (await p).model.dispose();
      } catch {
        // failed loads hold nothing
      }
    }
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
    const own = path.join(this.modelsDir, id);
    const external = (await this.external()).find((e) => e.meta.id === id);
    const inModels = await readModelMeta(own).then(
      (m) => m,
      () => undefined,
    );
    const dir = inModels || !external ? own : external.dir;
    const meta = inModels ?? external?.meta ?? (await readModelMeta(own));
    try {
      const model = await loadModel(dir);
      return { meta, model, dir };
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
