/**
 * Starting weights of a training run from a saved model (`train --init-from <dir>`): fine-tuning
 * a served model, or a warm restart of a longer learning-rate schedule (Loshchilov & Hutter 2017,
 * "SGDR"). Only the weights are taken; the optimizer's moments start afresh.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';
import { loadModel } from '../ml/model-io.ts';
import { readModelMeta, type ModelMeta } from '../ml/model-meta.ts';
import { hostWeights, type HostTensor } from './train.ts';

/** What `meta.json` records of the model a run started from (`training.initFrom`). */
export type InitFromRecord = NonNullable<NonNullable<ModelMeta['training']>['initFrom']>;

/** A saved model's weights as host copies, with their digest and what its `meta.json` says. */
export interface InitialWeights {
  /** The folder they were read from. */
  readonly dir: string;
  /** Float32 host copies in `model.weights` order (trainable, then non-trainable). */
  readonly weights: readonly HostTensor[];
  /**
   * The record for the new model's `meta.json`: the digest ({@link weightsDigest}), and what the
   * folder's `meta.json` says.
   */
  readonly record: InitFromRecord;
}

/**
 * SHA-256 (hex) of host weights: each weight's shape, then its float32 bytes (little-endian, as
 * the host stores them), in order. Equal weights give equal digests whatever their names.
 */
export function weightsDigest(weights: readonly HostTensor[]): string {
  const hash = createHash('sha256');
  for (const w of weights) {
    hash.update(`[${w.shape.join(',')}]`);
    hash.update(new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength));
  }
  return hash.digest('hex');
}

/**
 * Reads the weights a run starts from. Quantized (uint8) weights come back dequantized to
 * float32, as the model serves them.
 *
 * @param dir a model folder holding `model.json` and its weight shards (`meta.json` optional).
 * @returns the weights, disposed of in the engine: only host copies remain.
 * @throws {UserError} `model.missing_files` naming `dir` and the file when the folder,
 *   `model.json` or a shard is missing, unreadable or corrupt (a typed path, not a crash).
 */
export async function readInitialWeights(dir: string): Promise<InitialWeights> {
  let model: Awaited<ReturnType<typeof loadModel>>;
  try {
    model = await loadModel(dir);
  } catch (e) {
    throw new UserError(
      'model.missing_files',
      `the starting weights cannot be read: ${(e as Error).message}`,
      { model: dir },
    );
  }
  try {
    const weights = await hostWeights(model.weights);
    const meta = await readModelMeta(dir).catch(() => undefined);
    const t = meta?.training;
    const record: InitFromRecord = {
      sha256: weightsDigest(weights),
      ...(meta?.testAccuracy !== undefined ? { testAccuracy: meta.testAccuracy } : {}),
      ...(t ? { epochs: t.epochs, seconds: t.seconds } : {}),
      ...(t?.command !== undefined ? { command: t.command } : {}),
    };
    return { dir, weights, record };
  } finally {
    model.dispose();
  }
}
