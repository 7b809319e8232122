/**
 * Fetches `mobilenet-imagenet` from its official hosting into a data folder, where
 * `src/ml/imagenet.ts` finds it: the TF.js layers files (`model.json` and every weight shard its
 * `weightsManifest` lists) into `<dataDir>/imagenet/mobilenet_v1_0.25_224/`, and the class names
 * (the Keras ImageNet class index, converted to the array `imagenet.ts` reads) into
 * `<dataDir>/imagenet/imagenet_classes.json`.
 *
 * Everything is fetched into temporary names first (a `.part` folder beside the model folder),
 * each file checked against its hash and the shards against the sizes the manifest implies; only
 * then are the folder and the class names renamed into place, so a failed or damaged download
 * leaves nothing that looks like a model. Fetching, retries and progress are the data set
 * downloader's (`src/trainer/datasets/download.ts`).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.ts';
import { logger } from '../logger.ts';
import {
  corruptFileError,
  errorMessage,
  fetchOptionsOf,
  fetchToFile,
  hashOf,
  withTrailingSlash,
  type FetchOptions,
} from '../io/download.ts';
import { isFile } from '../io/files.ts';
import {
  IMAGENET_CLASSES_FILE,
  IMAGENET_MODEL_FOLDER,
  IMAGENET_MODEL_ID,
  isImagenetClassList,
  MOBILENET_MODEL_URL,
} from './imagenet.ts';
import { MODEL_JSON } from './model-io.ts';

/** Where a TF.js layers model is fetched from and what its files must hash to. */
export interface ModelSource {
  /** Folder URL of `model.json`; the weight shards lie beside it. */
  readonly baseUrl: string;
  /** Expected SHA-256 (lowercase hex) of `model.json` and of every weight shard, by file name. */
  readonly sha256: Readonly<Record<string, string>>;
}

/** Where the Keras ImageNet class index (`{"0": ["n01440764", "tench"], ...}`) comes from. */
export interface ClassIndexSource {
  readonly url: string;
  /** Expected MD5 (lowercase hex) of the file as served: the only hash Keras publishes for it. */
  readonly md5: string;
}

/**
 * The official TF.js hosting of MobileNet v1 0.25 224. The SHA-256 table was computed from the
 * copy in the course's shared data folder (`../shared/data/imagenet/mobilenet_v1_0.25_224/`,
 * which its README describes as the same model Google hosts for TF.js); the shard sizes agree
 * with the manifest's shapes (475,544 float32 weights).
 */
export const MOBILENET_SOURCE: ModelSource = {
  baseUrl: new URL('.', MOBILENET_MODEL_URL).href,
  sha256: {
    'model.json': '5376bf0e226d8e6e1a03389c3456ea8040147c8126f4c7898380cf90d6093d4a',
    'group1-shard1of1': 'edabf35aefbb81c92764cbfff6319c77376bfc36febff8fcda7af703d2b2d6aa',
    'group2-shard1of1': '2c1e2fdf2b434592a87f2473ee63eaadec9b9992274bf894bf9022aa62a4b295',
    'group3-shard1of1': '5c6dc065b191c2d25817b1363962b3750b10f12d1da45503d4f2b35f63828b44',
    'group4-shard1of1': '47b68d00ca57c0b6e39fb9d39e4eb7dabf0b99ec38c49bc45e1397cea329fe46',
    'group5-shard1of1': '165a39308c2b2db017e4e1c70d70014da8e7b2057d214a92b87ccd0aa8ecb8da',
    'group6-shard1of1': '0a9369be8b5dfb7f25eb782ca9d57bcf5c6018a60c5789975b7c802d2e9a8033',
    'group7-shard1of1': '7b7c74cb5c301312a7c62c9eeb4fdc8c5c57880f58268c32c1060bae7452a93a',
    'group8-shard1of1': '1403fb88a00a1ee465631c6fdb8eec0d532a7b4d9e946f03ae6848304bf41082',
    'group9-shard1of1': 'e29621b35ebb0a35d22a11ae5b1bb070c0526577bd92ed9c2cbf0a63f055b4e1',
    'group10-shard1of1': 'ac7417eb2b88016e6aed832a0cb61369e6457a7bbfef1167c22e49e00cf2a315',
    'group11-shard1of1': '31fc5c67b4f0f32a86069c90f5098988fb4b6b9d6e837cde9318bf82c6ace283',
    'group12-shard1of1': '45befac068de20c8d151a3cba9f7d09a0d4e0fd23e786a78615a98eb0800b1a5',
    'group13-shard1of1': '7c292473c55e234091f8d99422743779a5a9e8f91d49c90ef9a77432290299d4',
    'group14-shard1of1': '74ec361a7398c2510727c6a513f6e79a407aa5332f8a1b2b8c992b445a108c98',
    'group15-shard1of1': '268bfbd17bd9333c3867de58d15c359f8211111b47130361fc078ad85c838c17',
    'group16-shard1of1': 'fd6b29d8b2c4b14cb68b23c5b065c98cb5bf5b1bb591823fabbbf59a5699dcb3',
    'group17-shard1of1': 'ea7b1678a5eecbbec96a7aacb5577f54df43f71be8ee2480b5942e717488f6de',
    'group18-shard1of1': '56f8ed19d60e630e7a528adc90bc7215991c42606435be271ba2e1301317f353',
    'group19-shard1of1': '65f3ba8b805628857d9305ddec4b07b2ba3c578a7740d10791384a3ff5574ad1',
    'group20-shard1of1': '7050469756997f7f39f29123924e4d570740c865b9778102b4b5e860a60d2445',
    'group21-shard1of1': '32124cabcfdc5859466b6af656c8467fb4a48bdaac6382ab5b5db015565a09b4',
    'group22-shard1of1': '34fa5b0e22b0d998a9fe503fb921cf947c1f163d4b70017801cb6e900b1ab6d5',
    'group23-shard1of1': 'b7ac12c0857e6de96b0973df3f68bfe0d49a24f2408c120fe698e4b892bf00cc',
    'group24-shard1of1': '5206911ca627537095d3b4f6389df6d3d6397a7faee336e67215b71a691c8ae9',
    'group25-shard1of1': 'b2be37c058ad99a6bd51ca54884b3dfe278b33e5372d470ba8f4a8859139fb7d',
    'group26-shard1of1': '59fa80185c94b52f85592b65de71563a8acca6ed5cb94c4ae8f2a02ec97e808c',
    'group27-shard1of1': '67a89784137ea9720e6c5ee9d70113933e087100f3f0df3eebefda9dc11c72a3',
    'group28-shard1of1': 'c6fec2526a167ae899ad6bc96a27a4e525ef5e94da0c23a37465ecae266afd4d',
    'group29-shard1of1': '530f049c43b9f31f2e4aa2663723a5090cdec42f243833f348acb400a386311c',
    'group30-shard1of1': '1d202ecdbb7d48aa152ccb8cc34b24812f774038802f80a3e8889b3ab3b48599',
    'group31-shard1of1': '8dd9917bfc71ffec7d2f9b8a74a47b59fbc1f7d03e18c1a7996fb64cca244cb7',
    'group32-shard1of1': '93fd2a5988cb4578cf6ccb7f65eaf838621307923b726f4d34a9a69c82aa7835',
    'group33-shard1of1': 'ce01c0edb4584d50dddaf7d0deba4ab156b43176c8810a92b21ab0b239cecfba',
    'group34-shard1of1': '6cca55e52e39b97b87d67a21180fba53e51d3e2cdbb157ebfa09530836119364',
    'group35-shard1of1': '71a4b8f17edb37acb78b0acd6d666f247fbd41588528f84c74514054274f91bb',
    'group36-shard1of1': '88a53e2fe1d619390a3783149161113d6c792262133bd07d2a7ee0f0c8176e00',
    'group37-shard1of1': '63f0914ba3f4cd773e2b4eae2235ab43cb325b1ab21f1dc7325160b5b6aa0f3b',
    'group38-shard1of1': 'a762f7d6c962f43b16e8ef3fede568eac7f6fb2941af14cb25ef9a211e50f704',
    'group39-shard1of1': '6d0bdad897777f9eff6645374b533887cc446ebbb775ee9c4fb6ba3651c39be8',
    'group40-shard1of1': 'b0d70f6c3943ff882969ee42494650cbad05b6358ae4dd7fb767052e2c8d61a9',
    'group41-shard1of1': 'be3ae0501d536d6b8ebc9848b978062772dff56591473a3d593cdd23bad8557b',
    'group42-shard1of1': '6bab02eafbdb5743a75b8a18f4676f0206b9b2ddfe58bb752b3624fef4570bee',
    'group43-shard1of1': 'b1670b847b867f3375c5c28182f8dc7ec4cd5227e8a288e63c205057b4bcae06',
    'group44-shard1of1': '9449cf689bf0c590b8637e2d85cd66121af6e24ef23e327e1e9616e33c943ccf',
    'group45-shard1of1': '53adf89e30f46c58b4f2d692e3f74901346e0d9220abd42910069aa04b8a2ec6',
    'group46-shard1of1': '1f43e3baf5e0c002b161da703a15c05f331e6369da2ec24d9427365052e8ea02',
    'group47-shard1of1': 'ff90f4c898656ab72f1b22c661527d33ea24c277e0ec41a694b796bc70bbef62',
    'group48-shard1of1': '619417b59fbc5c8b19c0103a1356d8c6cc2edbbacae04d61bd66d568ca44ca10',
    'group49-shard1of1': '1277abc3755440b0589d7c19630c48ff996c7ed64cfdf29c9dfcc539db5788ea',
    'group50-shard1of1': 'fa47f3541eea153174b3159d5fe2d376de467a49925870fea3804f31253ca227',
    'group51-shard1of1': '56e538501e0a023c76eef09155492d06ac9b6c23e1ff740ce41b82b3c31d6e94',
    'group52-shard1of1': '5f089a0979fa68b7637bf26c51e866b6e08d2bad72e1a3e10dec081d551133e2',
    'group53-shard1of1': '00ede3172b77a23b95371ea79f0480b6a46c296c3c875732beeb213278223c4e',
    'group54-shard1of1': 'f9cda80d267ab6ef2c657afed93c1f0342db0a14c8c61ee8036dcd6ba04cf526',
    'group55-shard1of1': 'f047ff48ce2829fd9c10bbae13c9443d77d2450c3373b47ca3f8b837f0012789',
  },
};

/**
 * The Keras ImageNet class index, as `keras.applications.imagenet_utils.decode_predictions`
 * downloads it, with the MD5 Keras checks it against (`file_hash` in that function).
 */
export const IMAGENET_CLASS_INDEX_SOURCE: ClassIndexSource = {
  url: 'https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json',
  md5: 'c2c37ea517e94d9795004a39431a14cb',
};

/** The models `download` can fetch. */
export const DOWNLOADABLE_MODELS = [IMAGENET_MODEL_ID] as const;

/** Bytes received so far of one file of a model. */
export interface ModelDownloadProgress {
  readonly model: string;
  readonly file: string;
  readonly receivedBytes: number;
  /** From `Content-Length`, when the server sends it. */
  readonly totalBytes: number | undefined;
}

/** Options of {@link downloadImagenetModel}; every one has a production default. */
export interface ModelDownloadOptions extends FetchOptions {
  /** Replaces {@link MOBILENET_SOURCE} (a mirror, or a local server and fake model in tests). */
  readonly source?: ModelSource;
  /** Replaces {@link IMAGENET_CLASS_INDEX_SOURCE}. */
  readonly classIndex?: ClassIndexSource;
  /** Called for every chunk received. */
  readonly onProgress?: (progress: ModelDownloadProgress) => void;
}

/** What was done. */
export interface ModelDownloadResult {
  /** The model folder, `<dataDir>/imagenet/mobilenet_v1_0.25_224`. */
  readonly dir: string;
  /** `<dataDir>/imagenet/imagenet_classes.json`. */
  readonly classesFile: string;
  /** `present`: already there and intact, not fetched again. */
  readonly model: 'downloaded' | 'present';
  readonly classes: 'downloaded' | 'present';
  /** Files in the model folder: `model.json` and the weight shards. */
  readonly modelFiles: number;
}

/**
 * Downloads `mobilenet-imagenet` into `dataDir` (see the module comment), skipping the model
 * folder when it is already there with every file's checksum right, and the class names when the
 * file already holds 1000 names. Nothing is installed unless everything needed was fetched and
 * verified.
 *
 * @throws {UserError} `dataset.corrupt` when a file does not match its checksum, the manifest is
 *   invalid or lists a file missing from the checksum table, the shard sizes disagree with the
 *   weight shapes, or the class index is malformed.
 * @throws {Error} when a file cannot be fetched (HTTP error, network down after the retries),
 *   naming the file.
 * @example
 * const r = await downloadImagenetModel(loadConfig().DATA_DIR, { onProgress: (p) => bar.update(p.receivedBytes) });
 * r.dir; // '<DATA_DIR>/imagenet/mobilenet_v1_0.25_224'
 */
export async function downloadImagenetModel(
  dataDir: string,
  options: ModelDownloadOptions = {},
): Promise<ModelDownloadResult> {
  const source = options.source ?? MOBILENET_SOURCE;
  const classIndex = options.classIndex ?? IMAGENET_CLASS_INDEX_SOURCE;
  const dir = path.join(dataDir, IMAGENET_MODEL_FOLDER);
  const classesFile = path.join(dataDir, IMAGENET_CLASSES_FILE);
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(path.dirname(classesFile), { recursive: true });
  const tag = randomUUID().slice(0, 8);
  const tempDir = path.join(path.dirname(dir), `.${path.basename(dir)}.${tag}.part`);
  const tempIndex = `${classesFile}.${tag}.index.part`;
  const tempClasses = `${classesFile}.${tag}.part`;
  try {
    let modelFiles = await intactModelFiles(dir, source.sha256);
    const model = modelFiles === undefined ? 'downloaded' : 'present';
    if (modelFiles === undefined) modelFiles = await fetchModel(source, tempDir, options);
    else logger.info({ model: IMAGENET_MODEL_ID, dir }, 'model already present');

    const classes = (await hasClassNames(classesFile)) ? 'present' : 'downloaded';
    if (classes === 'downloaded') {
      await fetchClassNames(classIndex, tempIndex, tempClasses, options);
    } else {
      logger.info({ model: IMAGENET_MODEL_ID, file: classesFile }, 'class names already present');
    }

    // Everything is verified: install.
    if (model === 'downloaded') await replaceFolder(tempDir, dir, tag);
    if (classes === 'downloaded') await rename(tempClasses, classesFile);
    logger.info({ model: IMAGENET_MODEL_ID, dir, classesFile }, 'model installed');
    return { dir, classesFile, model, classes, modelFiles };
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    await rm(tempIndex, { force: true });
    await rm(tempClasses, { force: true });
  }
}

/**
 * Fetches `model.json` and its shards into `tempDir`, each verified on arrival.
 * @returns the number of files.
 */
async function fetchModel(
  source: ModelSource,
  tempDir: string,
  options: ModelDownloadOptions,
): Promise<number> {
  await mkdir(tempDir, { recursive: true });
  const base = withTrailingSlash(source.baseUrl);
  const modelUrl = new URL(MODEL_JSON, base).href;
  await fetchChecked(modelUrl, path.join(tempDir, MODEL_JSON), source.sha256, options);
  const manifest = parseManifest(await readFile(path.join(tempDir, MODEL_JSON), 'utf8'), modelUrl);
  const shards = manifest.flatMap((group) => group.paths);
  for (const shard of shards) {
    const url = new URL(shard, base).href;
    try {
      await fetchChecked(url, path.join(tempDir, shard), source.sha256, options);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new Error(
        `${IMAGENET_MODEL_ID}: weight file ${shard}, listed in model.json, could not be downloaded (${errorMessage(e)}); nothing was installed`,
        { cause: e },
      );
    }
  }
  await checkShardSizes(tempDir, manifest, modelUrl);
  return 1 + shards.length;
}

/**
 * Fetches `url` to `dest` (retrying transient failures) and checks its SHA-256 in `table`; `dest`
 * lies in the temporary folder that is renamed into place once every file checks.
 */
async function fetchChecked(
  url: string,
  dest: string,
  table: Readonly<Record<string, string>>,
  options: ModelDownloadOptions,
): Promise<void> {
  const file = path.basename(dest);
  const expected = table[file];
  if (expected === undefined) {
    throw corruptFileError(url, `${file} is not in the checksum table; nothing was installed`, {
      file,
    });
  }
  await fetchToFile(url, dest, {
    ...fetchOptionsOf(options),
    onProgress: (receivedBytes, totalBytes) =>
      options.onProgress?.({ model: IMAGENET_MODEL_ID, file, receivedBytes, totalBytes }),
  });
  const actual = await hashOf(dest, 'file');
  if (actual !== expected) {
    throw corruptFileError(
      url,
      `checksum mismatch: SHA-256 is ${actual}, expected ${expected}; nothing was installed`,
      { expected, actual, file },
    );
  }
}

/** Weight file names: plain names in the model folder, never a path. */
const SHARD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const manifestSchema = z.object({
  weightsManifest: z.array(
    z.object({
      paths: z.array(z.string().regex(SHARD_NAME)).min(1),
      weights: z.array(
        z.object({
          name: z.string(),
          shape: z.array(z.number().int().min(0)),
          dtype: z.string(),
          quantization: z.object({ dtype: z.string() }).optional(),
        }),
      ),
    }),
  ),
});

type WeightsManifest = z.infer<typeof manifestSchema>['weightsManifest'];

/** Bytes per stored value of the dtypes TF.js writes (a quantized weight: its `quantization.dtype`). */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  float16: 2,
  uint16: 2,
  uint8: 1,
};

function parseManifest(json: string, url: string): WeightsManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw corruptFileError(url, `not JSON (${errorMessage(e)})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw corruptFileError(
      url,
      `invalid weightsManifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data.weightsManifest;
}

/**
 * Checks that each weight group's shards add up to the bytes its weights' shapes and dtypes
 * imply (the shards of a group are its weights' values, concatenated).
 */
async function checkShardSizes(dir: string, manifest: WeightsManifest, url: string): Promise<void> {
  for (const group of manifest) {
    let expected = 0;
    for (const w of group.weights) {
      const dtype = w.quantization?.dtype ?? w.dtype;
      const bytes = DTYPE_BYTES[dtype];
      if (bytes === undefined) {
        throw corruptFileError(url, `weight ${w.name} has dtype ${dtype}, whose size is unknown`);
      }
      expected += bytes * w.shape.reduce((a, b) => a * b, 1);
    }
    let actual = 0;
    for (const shard of group.paths) actual += (await readFile(path.join(dir, shard))).byteLength;
    if (actual !== expected) {
      throw corruptFileError(
        url,
        `weight files ${group.paths.join(', ')} hold ${actual} bytes, the manifest's weights need ${expected}; nothing was installed`,
        { expected, actual, file: group.paths.join(',') },
      );
    }
  }
}

/**
 * The number of files of the model in `dir` when `model.json` and every shard it lists are there
 * with the right checksums and sizes; undefined otherwise.
 */
async function intactModelFiles(
  dir: string,
  table: Readonly<Record<string, string>>,
): Promise<number | undefined> {
  try {
    const modelJson = path.join(dir, MODEL_JSON);
    if (!(await isFile(modelJson)) || (await hashOf(modelJson, 'file')) !== table[MODEL_JSON]) {
      return undefined;
    }
    const manifest = parseManifest(await readFile(modelJson, 'utf8'), modelJson);
    const shards = manifest.flatMap((group) => group.paths);
    for (const shard of shards) {
      if ((await hashOf(path.join(dir, shard), 'file')) !== table[shard]) return undefined;
    }
    await checkShardSizes(dir, manifest, modelJson);
    return 1 + shards.length;
  } catch {
    return undefined;
  }
}

async function hasClassNames(file: string): Promise<boolean> {
  try {
    return isImagenetClassList(JSON.parse(await readFile(file, 'utf8')));
  } catch {
    return false;
  }
}

/** Fetches the class index to `tempIndex`, checks it, and writes the names to `tempClasses`. */
async function fetchClassNames(
  source: ClassIndexSource,
  tempIndex: string,
  tempClasses: string,
  options: ModelDownloadOptions,
): Promise<void> {
  const file = path.basename(new URL(source.url).pathname);
  await fetchToFile(source.url, tempIndex, {
    ...fetchOptionsOf(options),
    onProgress: (receivedBytes, totalBytes) =>
      options.onProgress?.({ model: IMAGENET_MODEL_ID, file, receivedBytes, totalBytes }),
  });
  const actual = await hashOf(tempIndex, 'file', 'md5');
  if (actual !== source.md5) {
    throw corruptFileError(
      source.url,
      `checksum mismatch: MD5 is ${actual}, expected ${source.md5}; nothing was installed`,
      { expected: source.md5, actual, file },
    );
  }
  let index: unknown;
  try {
    index = JSON.parse(await readFile(tempIndex, 'utf8'));
  } catch (e) {
    throw corruptFileError(source.url, `not JSON (${errorMessage(e)})`);
  }
  const names = classNamesFromKerasIndex(index, source.url);
  await writeFile(tempClasses, `${JSON.stringify(names)}\n`);
}

/** The Keras class index: class number -> [WordNet id, name]. */
const kerasIndexSchema = z.record(z.string(), z.tuple([z.string(), z.string().trim().min(1)]));

/**
 * The class names of the Keras ImageNet class index (`{"0": ["n01440764", "tench"], ...}`) as
 * the array `imagenet_classes.json` holds, index = model output, underscores read as spaces
 * (`great_grey_owl` becomes `great grey owl`).
 *
 * @throws {UserError} `dataset.corrupt` unless it maps each of "0".."999" to a
 *   `[wordnet id, name]` pair.
 * @example
 * classNamesFromKerasIndex({ '0': ['n01440764', 'tench'], ... }, url)[0]; // 'tench'
 */
export function classNamesFromKerasIndex(index: unknown, url: string): string[] {
  const parsed = kerasIndexSchema.safeParse(index);
  if (!parsed.success || Object.keys(parsed.data).length !== 1000) {
    throw corruptFileError(url, 'not a class index of 1000 [wordnet id, name] entries');
  }
  const entries = parsed.data;
  return Array.from({ length: 1000 }, (_, i) => {
    const entry = entries[String(i)];
    if (entry === undefined) throw corruptFileError(url, `class index lacks entry "${i}"`);
    return entry[1].replaceAll('_', ' ');
  });
}

/** Puts the folder `from` where `to` is, replacing what is there (moved aside, then deleted). */
async function replaceFolder(from: string, to: string, tag: string): Promise<void> {
  const old = path.join(path.dirname(to), `.${path.basename(to)}.${tag}.old`);
  const hadOld = await rename(to, old).then(
    () => true,
    () => false,
  );
  try {
    await rename(from, to);
  } catch (e) {
    if (hadOld) await rename(old, to).catch(() => undefined);
    throw e;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
}
