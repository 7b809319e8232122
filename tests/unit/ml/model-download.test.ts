import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { UserError } from '../../../src/errors.ts';
import {
  findImagenetModel,
  IMAGENET_CLASSES_FILE,
  IMAGENET_MODEL_FOLDER,
} from '../../../src/ml/imagenet.ts';
import {
  classNamesFromKerasIndex,
  downloadImagenetModel,
  MOBILENET_SOURCE,
  type ClassIndexSource,
  type ModelDownloadOptions,
  type ModelDownloadProgress,
  type ModelSource,
} from '../../../src/ml/model-download.ts';
import { loadModel, MODEL_JSON, saveModel, WEIGHTS_FILE } from '../../../src/ml/model-io.ts';

/** How the test server answers one request. */
type Answer = 'ok' | 'missing' | 'unavailable' | 'garbage';

const SHARDS = ['group1-shard1of2', 'group1-shard2of2'] as const;
const INDEX_PATH = '/keras/imagenet_class_index.json';

let root: string;
let server: Server;
let origin: string;
/** Bytes served, by URL path. */
const served = new Map<string, Buffer>();
/** Answers still to give, by URL path, before answering 'ok'. */
const plan = new Map<string, Answer[]>();
/** Requests received, by URL path. */
const requests = new Map<string, number>();

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

let source: ModelSource;
let classIndex: ClassIndexSource;
let options: ModelDownloadOptions;
/** The fake model's output for a fixed input. */
let expectedOutput: number[];
const probe = (): tf.Tensor2D => tf.tensor2d([[0.5, -1, 2]]);

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'model-download-test-'));

  // A tiny real model, its one weight file split into two shards as the TF.js converter does.
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [3], units: 4, activation: 'softmax' })],
  });
  expectedOutput = Array.from(await (model.predict(probe()) as tf.Tensor).data());
  const saved = path.join(root, 'saved');
  await saveModel(model, saved);
  model.dispose();
  const json = JSON.parse(await readFile(path.join(saved, MODEL_JSON), 'utf8')) as {
    weightsManifest: { paths: string[]; weights: { shape: number[] }[] }[];
  };
  const weights = await readFile(path.join(saved, WEIGHTS_FILE));
  expect(json.weightsManifest).toHaveLength(1);
  json.weightsManifest[0]!.paths = [...SHARDS];
  const half = Math.floor(weights.length / 2);
  served.set('/model/model.json', Buffer.from(JSON.stringify(json)));
  served.set(`/model/${SHARDS[0]}`, weights.subarray(0, half));
  served.set(`/model/${SHARDS[1]}`, weights.subarray(half));
  // The same shards under a manifest that claims one more weight value than they hold.
  const bigger = structuredClone(json);
  bigger.weightsManifest[0]!.weights[0]!.shape[0]! += 1;
  served.set('/bigger/model.json', Buffer.from(JSON.stringify(bigger)));
  for (const s of SHARDS) served.set(`/bigger/${s}`, served.get(`/model/${s}`)!);

  const index = Object.fromEntries(
    Array.from({ length: 1000 }, (_, i) => [String(i), [`n${i}`, `class_${i}_name`]]),
  );
  served.set(INDEX_PATH, Buffer.from(JSON.stringify(index)));

  server = createServer((req, res) => {
    const file = new URL(req.url ?? '/', 'http://x').pathname;
    requests.set(file, (requests.get(file) ?? 0) + 1);
    const body = served.get(file);
    const answer = plan.get(file)?.shift() ?? 'ok';
    if (body === undefined || answer === 'missing') {
      res.writeHead(404).end('not found');
    } else if (answer === 'unavailable') {
      res.writeHead(503).end('try later');
    } else if (answer === 'garbage') {
      const bad = Buffer.from(body);
      bad[0] = (bad[0] ?? 0) ^ 0xff;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
    } else {
      res.writeHead(200, { 'content-length': body.length }).end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const table = (dir: string): Record<string, string> =>
    Object.fromEntries(
      [MODEL_JSON, ...SHARDS].map((f) => [f, sha256(served.get(`/${dir}/${f}`)!)]),
    );
  source = { baseUrl: `${origin}/model`, sha256: table('model') };
  classIndex = { url: `${origin}${INDEX_PATH}`, md5: md5(served.get(INDEX_PATH)!) };
  options = { source, classIndex, retryDelayMs: 1 };
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  plan.clear();
  requests.clear();
});

let n = 0;
const freshDataDir = (): string => path.join(root, `data-${n++}`);
const totalRequests = (): number => [...requests.values()].reduce((a, b) => a + b, 0);
/** Everything under `<dataDir>/imagenet`, sorted (no temporary files may be left). */
const imagenetListing = async (dataDir: string): Promise<string[]> =>
  (await readdir(path.join(dataDir, 'imagenet'), { recursive: true })).sort();

describe('downloadImagenetModel', () => {
  it('installs the model and class names where mobilenet-imagenet is looked for', async () => {
    const dataDir = freshDataDir();
    const progress: ModelDownloadProgress[] = [];
    plan.set(`/model/${SHARDS[1]}`, ['unavailable']);

    const result = await downloadImagenetModel(dataDir, {
      ...options,
      onProgress: (p) => progress.push(p),
    });

    const dir = path.join(dataDir, IMAGENET_MODEL_FOLDER);
    expect(result).toEqual({
      dir,
      classesFile: path.join(dataDir, IMAGENET_CLASSES_FILE),
      model: 'downloaded',
      classes: 'downloaded',
      modelFiles: 3,
    });
    expect(await imagenetListing(dataDir)).toEqual(
      [
        'imagenet_classes.json',
        'mobilenet_v1_0.25_224',
        ...[MODEL_JSON, ...SHARDS].map((f) => path.join('mobilenet_v1_0.25_224', f)),
      ].sort(),
    );
    expect(requests.get(`/model/${SHARDS[1]}`)).toBe(2); // the 503 was retried

    const found = await findImagenetModel([dataDir]);
    expect(found?.dir).toBe(dir);
    expect(found?.meta.classNames.slice(0, 2)).toEqual(['class 0 name', 'class 1 name']);
    const loaded = await loadModel(dir);
    const out = loaded.predict(probe()) as tf.Tensor;
    expect(Array.from(await out.data())).toEqual(expectedOutput);
    tf.dispose([out]);
    loaded.dispose();

    const size = served.get(`/model/${SHARDS[0]}`)!.length;
    expect(progress.filter((p) => p.file === SHARDS[0]).at(-1)).toEqual({
      model: 'mobilenet-imagenet',
      file: SHARDS[0],
      receivedBytes: size,
      totalBytes: size,
    });
    expect(new Set(progress.map((p) => p.file))).toEqual(
      new Set([MODEL_JSON, ...SHARDS, 'imagenet_class_index.json']),
    );
  });

  it('fetches nothing when model and class names are already there', async () => {
    const dataDir = freshDataDir();
    await downloadImagenetModel(dataDir, options);
    requests.clear();

    const again = await downloadImagenetModel(dataDir, options);

    expect([again.model, again.classes]).toEqual(['present', 'present']);
    expect(totalRequests()).toBe(0);
  });

  it('replaces an installed model whose shard is damaged, keeping the class names', async () => {
    const dataDir = freshDataDir();
    await downloadImagenetModel(dataDir, options);
    await writeFile(path.join(dataDir, IMAGENET_MODEL_FOLDER, SHARDS[1]), 'half a file');
    requests.clear();

    const again = await downloadImagenetModel(dataDir, options);

    expect([again.model, again.classes]).toEqual(['downloaded', 'present']);
    expect(await readFile(path.join(dataDir, IMAGENET_MODEL_FOLDER, SHARDS[1]))).toEqual(
      served.get(`/model/${SHARDS[1]}`),
    );
    expect(requests.get(INDEX_PATH)).toBeUndefined();
    expect(
      (await imagenetListing(dataDir)).filter((f) => f.includes('.part') || f.includes('.old')),
    ).toEqual([]);
  });

  it('refuses a shard whose checksum is wrong and leaves nothing half-written', async () => {
    const dataDir = freshDataDir();
    plan.set(`/model/${SHARDS[1]}`, ['garbage']);

    const error = await downloadImagenetModel(dataDir, options).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ id: 'dataset.corrupt', params: { file: SHARDS[1] } });
    expect((error as Error).message).toMatch(/checksum mismatch.*nothing was installed/);
    expect(await imagenetListing(dataDir)).toEqual([]);
    expect(await findImagenetModel([dataDir])).toBeUndefined();
  });

  it('refuses a class index whose checksum is wrong, installing no model either', async () => {
    const dataDir = freshDataDir();
    plan.set(INDEX_PATH, ['garbage']);

    await expect(downloadImagenetModel(dataDir, options)).rejects.toMatchObject({
      id: 'dataset.corrupt',
      message: expect.stringMatching(/MD5/) as unknown,
    });
    expect(await imagenetListing(dataDir)).toEqual([]);
  });

  it('names a weight shard that is missing from the server', async () => {
    const dataDir = freshDataDir();
    plan.set(`/model/${SHARDS[1]}`, ['missing']);

    await expect(downloadImagenetModel(dataDir, options)).rejects.toThrow(
      /weight file group1-shard2of2, listed in model\.json, could not be downloaded \(.*HTTP 404.*\); nothing was installed/,
    );
    expect(requests.get(`/model/${SHARDS[1]}`)).toBe(1); // a 404 is not retried
    expect(await imagenetListing(dataDir)).toEqual([]);
  });

  it('refuses shards that do not add up to the weights the manifest declares', async () => {
    const dataDir = freshDataDir();
    const bigger: ModelSource = {
      baseUrl: `${origin}/bigger/`,
      sha256: { ...source.sha256, [MODEL_JSON]: sha256(served.get('/bigger/model.json')!) },
    };

    await expect(
      downloadImagenetModel(dataDir, { ...options, source: bigger }),
    ).rejects.toMatchObject({
      id: 'dataset.corrupt',
      message: expect.stringMatching(/hold \d+ bytes, the manifest's weights need \d+/) as unknown,
    });
    expect(await imagenetListing(dataDir)).toEqual([]);
  });

  it('refuses a manifest listing a file missing from the checksum table', async () => {
    const dataDir = freshDataDir();
    const partial = Object.fromEntries(
      Object.entries(source.sha256).filter(([f]) => f !== SHARDS[0]),
    );

    await expect(
      downloadImagenetModel(dataDir, { ...options, source: { ...source, sha256: partial } }),
    ).rejects.toMatchObject({
      id: 'dataset.corrupt',
      message: expect.stringMatching(/group1-shard1of2 is not in the checksum table/) as unknown,
    });
    expect(await imagenetListing(dataDir)).toEqual([]);
  });
});

describe('classNamesFromKerasIndex', () => {
  it('reads the names in index order, underscores as spaces', () => {
    const index = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [String(999 - i), [`n${999 - i}`, `c_${999 - i}`]]),
    );
    const names = classNamesFromKerasIndex(index, 'u');
    expect(names).toHaveLength(1000);
    expect([names[0], names[24], names[999]]).toEqual(['c 0', 'c 24', 'c 999']);
  });

  it('refuses anything else', () => {
    const short = { '0': ['n01440764', 'tench'] };
    const gap = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [String(i + 1), ['n', 'x']]),
    );
    for (const bad of [short, gap, [], null, 'tench']) {
      expect(() => classNamesFromKerasIndex(bad, 'u')).toThrow(UserError);
    }
  });
});

describe('the MobileNet source', () => {
  it('is the official TF.js hosting, with a checksum for model.json and 55 shards', () => {
    expect(MOBILENET_SOURCE.baseUrl).toBe(
      'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/',
    );
    const files = Object.keys(MOBILENET_SOURCE.sha256);
    expect(files).toHaveLength(56);
    expect(files).toContain('model.json');
    expect(Object.values(MOBILENET_SOURCE.sha256).every((h) => /^[0-9a-f]{64}$/.test(h))).toBe(
      true,
    );
  });

  const shared = process.env.CNN_SHARED_DATA ?? path.join(PROJECT_ROOT, '..', 'shared', 'data');
  const sharedModel = path.join(shared, IMAGENET_MODEL_FOLDER);
  it.skipIf(!existsSync(path.join(sharedModel, MODEL_JSON)))(
    'downloads the real model (the shared copy, served locally) against the real table',
    async () => {
      for (const f of Object.keys(MOBILENET_SOURCE.sha256)) {
        served.set(`/real/${f}`, await readFile(path.join(sharedModel, f)));
      }
      const dataDir = freshDataDir();

      const result = await downloadImagenetModel(dataDir, {
        ...options,
        source: { ...MOBILENET_SOURCE, baseUrl: `${origin}/real/` },
      });

      expect([result.model, result.modelFiles]).toEqual(['downloaded', 56]);
    },
  );
});
