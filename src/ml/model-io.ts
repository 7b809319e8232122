import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { bufferOf, quantizeWeights, type QuantizeDtype } from './quantize.ts';
import { exists } from '../io/files.ts';

/** Name of the topology + weights-manifest file, as tfjs-node `file://` and the converter write it. */
export const MODEL_JSON = 'model.json';

/** Name of the single weights shard {@link saveModel} writes. */
export const WEIGHTS_FILE = 'group1-shard1of1.bin';

/** Extra files written into the model folder in the same atomic step, name → contents. */
export type ExtraFiles = Readonly<Record<string, string | Uint8Array>>;

/** Options of {@link saveModel} and {@link fileSaveHandler}. */
export interface SaveOptions {
  /**
   * Store the float32 weights quantized (see `quantize.ts`): `uint8` (a quarter of the size,
   * error up to half a step of each tensor's range / 255) or `float16` (half the size, relative
   * error up to 2^-11). int32 weights are stored as they are. Default: float32, exact.
   */
  readonly quantize?: QuantizeDtype;
}

/**
 * A `tf.io.IOHandler` that writes a model into `dir` in the standard layout: `model.json`
 * (`modelTopology`, `weightsManifest`, `format`...) and `group1-shard1of1.bin` (all weights,
 * little-endian, in manifest order) — what `tf.loadLayersModel('file://…/model.json')` (tfjs-node)
 * and `tf.loadLayersModel('https://…/model.json')` (browsers) read. The folder is written beside
 * the target and renamed into place, so readers see the old model or the new one, never a mix.
 *
 * @param dir the model folder (created, or replaced as a whole).
 * @param extra more files for the same folder (e.g. `meta.json`); plain names only.
 * @param options `quantize`: the weights stored quantized, with `quantization` in the manifest.
 * @returns (from `save`) `modelArtifactsInfo.weightDataBytes`: the size of the weight file written.
 *
 * @example
 * await model.save(fileSaveHandler('models/lenet', { 'meta.json': JSON.stringify(meta) }));
 */
export function fileSaveHandler(
  dir: string,
  extra: ExtraFiles = {},
  options: SaveOptions = {},
): tf.io.IOHandler {
  const extraFiles = checkExtraFiles(extra);
  return {
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      if (artifacts.modelTopology instanceof ArrayBuffer || artifacts.modelTopology == null) {
        throw new Error(
          `Cannot save to ${dir}: only layers models with a JSON topology are supported.`,
        );
      }
      let weights: Uint8Array = new Uint8Array(
        tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)),
      );
      let specs = artifacts.weightSpecs ?? [];
      if (options.quantize !== undefined) {
        ({ specs, data: weights } = quantizeWeights(specs, bufferOf(weights), options.quantize));
      }
      const modelJson = toModelJson(artifacts, [{ paths: [WEIGHTS_FILE], weights: specs }]);
      const files: [string, string | Uint8Array][] = [
        [MODEL_JSON, JSON.stringify(modelJson)],
        [WEIGHTS_FILE, weights],
        ...extraFiles,
      ];
      await writeDirAtomically(dir, files);
      return {
        modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON({
          ...artifacts,
          weightSpecs: specs,
          weightData: bufferOf(weights),
        }),
      };
    },
  };
}

/**
 * A `tf.io.IOHandler` that reads a model folder in the standard layout: `model.json` plus the
 * weight files its manifest lists (any number of groups and shards, relative to the folder).
 * Quantized weights (`quantization: {dtype: 'uint8' | 'uint16', scale, min}` or
 * `{dtype: 'float16'}`) are left to `tf.io.decodeWeights`, which dequantizes them to float32.
 *
 * @param dir the model folder.
 * @throws {Error} naming the folder when `model.json` or a shard is missing or malformed.
 */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      const jsonPath = path.join(dir, MODEL_JSON);
      let text: string;
      try {
        text = await readFile(jsonPath, 'utf8');
      } catch (error) {
        throw new Error(`Cannot load model from ${dir}: ${describeFsError(error, jsonPath)}`, {
          cause: error,
        });
      }
      const modelJson = parseModelJson(text, jsonPath);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const shards: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const shardPath of group.paths) {
            shards.push(await readShard(dir, shardPath));
          }
        }
        checkWeightBytes(specs, shards, dir);
        return [specs, shards];
      });
    },
  };
}

/**
 * Saves a layers model (topology and weights) into `dir` atomically; see {@link fileSaveHandler}
 * for the layout. As with `model.save` by default, the compile settings and optimizer state are
 * not saved: the loaded model predicts, and is compiled again to train further.
 *
 * With `{ quantize }` the float32 weights are stored quantized in the manifest format
 * `tensorflowjs_converter --quantize_uint8 / --quantize_float16` writes (see `quantize.ts`);
 * {@link loadModel} (and any TF.js) dequantizes them to float32 on load, giving exactly the
 * weights `applyQuantization(model, dtype)` leaves in memory.
 *
 * @param model the model to save.
 * @param dir its folder, e.g. `models/lenet-mnist`; an existing folder is replaced as a whole.
 * @param extra more files written into the folder in the same atomic step, e.g.
 *   `{ 'meta.json': JSON.stringify(meta) }`.
 * @param options `quantize: 'uint8' | 'float16'` to store the weights quantized.
 * @returns `modelArtifactsInfo.weightDataBytes`: the size of the weight file written.
 * @throws {Error} for a bad extra file name, or (quantizing) a non-finite weight; the old folder
 *   is then left as it was.
 *
 * @example
 * await saveModel(model, 'models/lenet-mnist', { 'meta.json': JSON.stringify(meta, null, 2) });
 * await saveModel(alexnet, 'models/alexnet-cifar10', {}, { quantize: 'uint8' }); // 1/4 the bytes
 */
export async function saveModel(
  model: tf.LayersModel,
  dir: string,
  extra: ExtraFiles = {},
  options: SaveOptions = {},
): Promise<tf.io.SaveResult> {
  return model.save(fileSaveHandler(dir, extra, options));
}

/**
 * Loads a layers model saved by {@link saveModel}, by tfjs-node (`file://`), or converted by
 * `tensorflowjs_converter` (layers format), without tfjs-node.
 *
 * @param dir the folder holding `model.json`.
 * @throws {Error} naming `dir` when the folder, `model.json` or a weight shard is missing or corrupt.
 *
 * @example
 * const model = await loadModel('models/lenet-mnist');
 * const probs = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor2D; // [1, 10]
 */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(fileLoadHandler(dir));
  } catch (error) {
    const message = (error as Error).message;
    if (message.includes(dir)) {
      throw error;
    }
    throw new Error(`Cannot load model from ${dir}: ${message}`, { cause: error });
  }
}

function toModelJson(
  artifacts: tf.io.ModelArtifacts,
  manifest: tf.io.WeightsManifestConfig,
): tf.io.ModelJSON {
  // Same fields, in the same order, as tfjs-core's getModelJSONForModelArtifacts (not exported).
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: manifest,
  };
  if (artifacts.signature != null) json.signature = artifacts.signature;
  if (artifacts.userDefinedMetadata != null)
    json.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.modelInitializer != null) json.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature != null) {
    json.initializerSignature = artifacts.initializerSignature;
  }
  if (artifacts.trainingConfig != null) json.trainingConfig = artifacts.trainingConfig;
  return json;
}

function parseModelJson(text: string, jsonPath: string): tf.io.ModelJSON {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`Corrupt model file ${jsonPath}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new Error(`Corrupt model file ${jsonPath}: not a JSON object.`);
  }
  const json = parsed as Partial<tf.io.ModelJSON>;
  if (typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw new Error(`Corrupt model file ${jsonPath}: no modelTopology.`);
  }
  const manifest: unknown = json.weightsManifest;
  if (
    !Array.isArray(manifest) ||
    !manifest.every(
      (g: Partial<tf.io.WeightsManifestConfig[number]> | null) =>
        g !== null && Array.isArray(g.paths) && Array.isArray(g.weights),
    )
  ) {
    throw new Error(`Corrupt model file ${jsonPath}: no valid weightsManifest.`);
  }
  return json as tf.io.ModelJSON;
}

async function readShard(dir: string, shardPath: string): Promise<ArrayBuffer> {
  const resolved = path.resolve(dir, shardPath);
  const relative = path.relative(path.resolve(dir), resolved);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new Error(`Cannot load model from ${dir}: weight path ${shardPath} leaves the folder.`);
  }
  try {
    const bytes = await readFile(resolved);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  } catch (error) {
    throw new Error(`Cannot load model from ${dir}: ${describeFsError(error, resolved)}`, {
      cause: error,
    });
  }
}

const DTYPE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Catches a truncated or mismatched shard before decodeWeights reads past its end. */
function checkWeightBytes(
  specs: readonly tf.io.WeightsManifestEntry[],
  shards: readonly ArrayBuffer[],
  dir: string,
): void {
  let expected = 0;
  for (const spec of specs) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const bytes = DTYPE_BYTES[dtype];
    if (bytes === undefined) {
      return; // strings and other variable-size weights: leave the check to decodeWeights
    }
    expected += bytes * spec.shape.reduce((a, b) => a * b, 1);
  }
  const actual = shards.reduce((sum, s) => sum + s.byteLength, 0);
  if (actual < expected) {
    throw new Error(
      `Cannot load model from ${dir}: weight files hold ${actual} bytes, the manifest needs ${expected}.`,
    );
  }
}

function describeFsError(error: unknown, file: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `${file} does not exist.`;
  if (code === 'EISDIR') return `${file} is a folder.`;
  return `${file} cannot be read (${(error as Error).message}).`;
}

function checkExtraFiles(extra: ExtraFiles): [string, string | Uint8Array][] {
  const entries = Object.entries(extra);
  for (const [name] of entries) {
    if (name === MODEL_JSON || name === WEIGHTS_FILE) {
      throw new Error(`Extra file name ${name} would overwrite the model itself.`);
    }
    if (
      name === '' ||
      name === '.' ||
      name === '..' ||
      name !== path.basename(name) ||
      name.includes('\\')
    ) {
      throw new Error(`Extra file name ${JSON.stringify(name)} must be a plain file name.`);
    }
  }
  return entries;
}

/**
 * Writes `files` into a fresh folder beside `dir`, flushes them, then swaps it in: `dir` (if any)
 * is renamed away, the new folder renamed to `dir`, the old one deleted. If the swap fails the old
 * folder is put back. A crash leaves at worst a hidden `.name.tmp-*` / `.name.old-*` folder and
 * either the old or the new model in place (between the two renames, `dir` is briefly absent).
 */
export async function writeDirAtomically(
  dir: string,
  files: readonly (readonly [string, string | Uint8Array])[],
): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const base = path.basename(target);
  await mkdir(parent, { recursive: true });
  await recoverInterruptedSwap(target);
  const tmp = await mkdtemp(path.join(parent, `.${base}.tmp-`));
  try {
    // mkdtemp makes the folder 0700; a model is read by whoever runs the bot.
    await chmod(tmp, 0o755);
    for (const [name, contents] of files) {
      const handle = await open(path.join(tmp, name), 'wx');
      try {
        await handle.writeFile(contents);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    await swapIn(tmp, target);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Puts back the previous folder when a process was killed between the two renames of a swap
 * (`dir` absent, one `.name.old-*` beside it). Readers of folders written by
 * {@link writeDirAtomically} call it first; a no-op otherwise.
 */
export async function recoverInterruptedSwap(dir: string): Promise<void> {
  const target = path.resolve(dir);
  if (await exists(target)) return;
  let siblings: string[];
  try {
    siblings = await readdir(path.dirname(target));
  } catch {
    return;
  }
  const olds = siblings.filter((n) => n.startsWith(`.${path.basename(target)}.old-`));
  if (olds.length === 1) await rename(path.join(path.dirname(target), olds[0]!), target);
}

async function swapIn(tmp: string, target: string): Promise<void> {
  if (!(await exists(target))) {
    await rename(tmp, target);
    return;
  }
  const old = path.join(
    path.dirname(target),
    `.${path.basename(target)}.old-${randomBytes(4).toString('hex')}`,
  );
  await rename(target, old);
  try {
    await rename(tmp, target);
  } catch (error) {
    await rename(old, target);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}
