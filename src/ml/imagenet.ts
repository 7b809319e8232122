/**
 * The ImageNet-pretrained MobileNet v1 (alpha 0.25, 224x224; Google's TF.js port of the Keras
 * application, Apache-2.0) as the model `mobilenet-imagenet`. It is third-party data, never part
 * of the project: it is found in a data folder (`<DATA_DIR>/imagenet/mobilenet_v1_0.25_224/`,
 * then `$CNN_SHARED_DATA/imagenet/...`), with the class names in `imagenet/imagenet_classes.json`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_JSON } from './model-io.ts';
import { META_FILE, readModelMeta, type ModelMeta } from './model-meta.ts';
import { isFile } from '../io/files.ts';

/** The model id. */
export const IMAGENET_MODEL_ID = 'mobilenet-imagenet';

/** Where the model lies in a data folder. */
export const IMAGENET_MODEL_FOLDER = path.join('imagenet', 'mobilenet_v1_0.25_224');

/** Where the class names lie in a data folder: a JSON array, index = model output. */
export const IMAGENET_CLASSES_FILE = path.join('imagenet', 'imagenet_classes.json');

/**
 * Its official TF.js hosting (layers format: `model.json` and 55 weight shards beside it);
 * `bin/cnn-classroom download mobilenet-imagenet` fetches it (`src/ml/model-download.ts`).
 */
export const MOBILENET_MODEL_URL =
  'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json';

/** A model found outside the models folder. */
export interface ExternalModel {
  readonly dir: string;
  readonly meta: ModelMeta;
}

/**
 * The data folders searched for third-party models: `DATA_DIR`, then `CNN_SHARED_DATA` (the
 * shared, read-only data folder, as for the data sets) when set.
 * @example
 * modelDataDirs(loadConfig()); // ['/srv/cnn/data', '/work/shared/data']
 */
export function modelDataDirs(config: {
  readonly DATA_DIR: string;
  readonly CNN_SHARED_DATA?: string | undefined;
}): string[] {
  const shared = config.CNN_SHARED_DATA;
  return [config.DATA_DIR, ...(shared ? [shared] : [])];
}

/** True for what `imagenet_classes.json` must hold: an array of 1000 class names. */
export function isImagenetClassList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length === 1000 && value.every((n) => typeof n === 'string');
}

/**
 * The metadata MobileNet needs: RGB 224x224 scaled to [-1, 1] (x / 127.5 - 1), 1000 classes.
 * A `meta.json` in the model folder takes precedence.
 */
export async function imagenetMeta(dataDir: string): Promise<ModelMeta> {
  const dir = path.join(dataDir, IMAGENET_MODEL_FOLDER);
  if (await isFile(path.join(dir, META_FILE))) return readModelMeta(dir);
  const names: unknown = JSON.parse(
    await readFile(path.join(dataDir, IMAGENET_CLASSES_FILE), 'utf8'),
  );
  if (!isImagenetClassList(names)) {
    throw new Error(`${IMAGENET_CLASSES_FILE} in ${dataDir} is not a list of 1000 class names`);
  }
  return {
    id: IMAGENET_MODEL_ID,
    architecture: 'mobilenet-v1-0.25',
    dataset: 'imagenet',
    inputShape: [224, 224, 3],
    preprocess: 'rgb-signed',
    classNames: names,
  };
}

/**
 * Finds `mobilenet-imagenet` in the first data folder that holds it (its `model.json` and the
 * class names).
 * @returns undefined when no folder does.
 */
export async function findImagenetModel(
  dataDirs: readonly string[],
): Promise<ExternalModel | undefined> {
  for (const dataDir of dataDirs) {
    const dir = path.join(dataDir, IMAGENET_MODEL_FOLDER);
    if (!(await isFile(path.join(dir, MODEL_JSON)))) continue;
    try {
      return { dir, meta: await imagenetMeta(dataDir) };
    } catch {
      // class names missing or invalid: try the next folder
    }
  }
  return undefined;
}
