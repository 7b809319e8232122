import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../core/errors.ts';
import { loadModel } from './model-io.ts';
import { readModelMeta, type ModelMeta } from './model-meta.ts';

/** A model ready for inference, with its metadata. */
export interface LoadedModel {
  readonly meta: ModelMeta;
  readonly model: tf.LayersModel;
  /** Folder the model was loaded from. */
  readonly dir: string;
}

/**
 * The models available in a models folder: every sub-folder holding `model.json` and `meta.json`
 * (`models/<id>/`). Models load on first use and stay in memory; loading is shared between
 * concurrent callers.
 */
export class ModelRegistry {
  private readonly loading = new Map<string, Promise<LoadedModel>>();

  constructor(readonly modelsDir: string) {}

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
    return metas;
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
    const dir = path.join(this.modelsDir, id);
    const meta = await readModelMeta(dir);
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
