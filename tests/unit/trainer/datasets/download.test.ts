import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCifar10 } from '../../../../src/trainer/datasets/cifar10.ts';
import {
  DATASET_SOURCES,
  downloadDataset,
  hashOf,
  type DownloadProgress,
  type FileChecksum,
} from '../../../../src/trainer/datasets/download.ts';
import { loadMnistLike } from '../../../../src/trainer/datasets/mnist.ts';
import {
  CIFAR_RECORDS_PER_BATCH,
  IDX_COUNTS,
  makeDatasetFixtures,
  type DatasetFixtures,
} from '../../../fixtures/datasets/make-fixtures.ts';

/** How the test server answers one request for a file. */
type Answer = 'ok' | 'missing' | 'unavailable' | 'cut' | 'garbage';

let root: string;
let fx: DatasetFixtures;
let server: Server;
let baseUrl: string;
/** Bytes served, by file name. */
const served = new Map<string, Buffer>();
/** Answers still to give, by file name, before answering 'ok'. */
const plan = new Map<string, Answer[]>();
/** Requests received, by file name. */
const requests = new Map<string, number>();

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const fast = { retryDelayMs: 1 } as const;
let mnistChecksums: FileChecksum[];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'download-test-'));
  fx = await makeDatasetFixtures(path.join(root, 'fixtures'));
  for (const file of DATASET_SOURCES.mnist.files.map((f) => f.file)) {
    served.set(file, await readFile(path.join(fx.dataDir, 'mnist', file)));
  }
  served.set(
    'cifar-10-binary.tar.gz',
    await readFile(path.join(fx.dataDir, 'cifar-10', 'cifar-10-binary.tar.gz')),
  );
  mnistChecksums = DATASET_SOURCES.mnist.files.map((f) => ({
    file: f.file,
    sha256: sha256(gunzipSync(served.get(f.file) ?? Buffer.alloc(0))),
    of: 'gunzipped',
  }));

  server = createServer((req, res) => {
    const file = decodeURIComponent(
      new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/files\//, ''),
    );
    requests.set(file, (requests.get(file) ?? 0) + 1);
    const body = served.get(file);
    const answer = plan.get(file)?.shift() ?? 'ok';
    if (body === undefined || answer === 'missing') {
      res.writeHead(404).end('not found');
    } else if (answer === 'unavailable') {
      res.writeHead(503).end('try later');
    } else if (answer === 'cut') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
    } else if (answer === 'garbage') {
      const bad = Buffer.from(body);
      bad[bad.length - 20] = (bad[bad.length - 20] ?? 0) ^ 0xff;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
    } else {
      res.writeHead(200, { 'content-length': body.length }).end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files`;
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
/** A fresh, empty data folder. */
const freshDataDir = (): string => path.join(root, `data-${n++}`);
const totalRequests = (): number => [...requests.values()].reduce((a, b) => a + b, 0);

describe('downloadDataset', () => {
  it('downloads the four MNIST files where the loader finds them, reporting progress', async () => {
    const dataDir = freshDataDir();
    const progress: DownloadProgress[] = [];

    const result = await downloadDataset('mnist', dataDir, {
      baseUrl,
      checksums: mnistChecksums,
      onProgress: (p) => progress.push(p),
    });

    expect(result.dir).toBe(path.join(dataDir, 'mnist'));
    expect(result.files.map((f) => [f.file, f.status])).toEqual(
      mnistChecksums.map((c) => [c.file, 'downloaded']),
    );
    expect((await readdir(result.dir)).sort()).toEqual(mnistChecksums.map((c) => c.file).sort());
    const train = await loadMnistLike('mnist', 'train', dataDir, { systemDirs: [] });
    expect(train.count).toBe(IDX_COUNTS.train);
    const last = progress.filter((p) => p.file === 'train-images-idx3-ubyte.gz').at(-1);
    const size = served.get('train-images-idx3-ubyte.gz')?.length;
    expect(last).toEqual({
      dataset: 'mnist',
      file: 'train-images-idx3-ubyte.gz',
      receivedBytes: size,
      totalBytes: size,
    });
  });

  it('skips files already present with the right checksum', async () => {
    const dataDir = freshDataDir();
    await downloadDataset('mnist', dataDir, { baseUrl, checksums: mnistChecksums });
    requests.clear();

    const again = await downloadDataset('mnist', dataDir, { baseUrl, checksums: mnistChecksums });

    expect(again.files.every((f) => f.status === 'present')).toBe(true);
    expect(totalRequests()).toBe(0);
  });

  it('replaces a present file whose checksum is wrong', async () => {
    const dataDir = freshDataDir();
    const stale = path.join(dataDir, 'mnist', 't10k-labels-idx1-ubyte.gz');
    await mkdir(path.dirname(stale), { recursive: true });
    await writeFile(stale, 'half a file');

    const result = await downloadDataset('mnist', dataDir, { baseUrl, checksums: mnistChecksums });

    expect(result.files.find((f) => f.file === 't10k-labels-idx1-ubyte.gz')?.status).toBe(
      'downloaded',
    );
    expect(
      (await readFile(stale)).equals(served.get('t10k-labels-idx1-ubyte.gz') ?? Buffer.alloc(0)),
    ).toBe(true);
  });

  it('retries after HTTP 503 and after a connection cut mid-body', async () => {
    plan.set('train-labels-idx1-ubyte.gz', ['unavailable', 'cut']);

    const result = await downloadDataset('mnist', freshDataDir(), {
      baseUrl,
      checksums: mnistChecksums,
      ...fast,
    });

    expect(requests.get('train-labels-idx1-ubyte.gz')).toBe(3);
    expect(result.files.every((f) => f.status === 'downloaded')).toBe(true);
  });

  it('gives up after the allowed retries and leaves no file behind', async () => {
    plan.set('train-images-idx3-ubyte.gz', ['unavailable', 'unavailable', 'unavailable']);
    const dataDir = freshDataDir();

    await expect(
      downloadDataset('mnist', dataDir, {
        baseUrl,
        checksums: mnistChecksums,
        retries: 2,
        ...fast,
      }),
    ).rejects.toThrow(
      /could not download http:\/\/127\.0\.0\.1:\d+\/files\/train-images-idx3-ubyte\.gz: HTTP 503 .*\(3 attempts\)/,
    );
    expect(requests.get('train-images-idx3-ubyte.gz')).toBe(3);
    expect(await readdir(path.join(dataDir, 'mnist'))).toEqual([]);
  });

  it('does not retry HTTP 404', async () => {
    plan.set('train-images-idx3-ubyte.gz', ['missing']);

    await expect(
      downloadDataset('mnist', freshDataDir(), { baseUrl, checksums: mnistChecksums, ...fast }),
    ).rejects.toThrow(/HTTP 404 Not Found \(1 attempt\)/);
    expect(requests.get('train-images-idx3-ubyte.gz')).toBe(1);
  });

  it('rejects a checksum mismatch as dataset.corrupt and deletes the file', async () => {
    plan.set('t10k-images-idx3-ubyte.gz', ['garbage']);
    const dataDir = freshDataDir();

    const error = await downloadDataset('mnist', dataDir, {
      baseUrl,
      checksums: mnistChecksums,
      ...fast,
    }).catch((e: unknown) => e);

    expect(error).toMatchObject({
      id: 'dataset.corrupt',
      params: { file: 't10k-images-idx3-ubyte.gz' },
    });
    expect((error as Error).message).toMatch(/t10k-images-idx3-ubyte\.gz: checksum mismatch/);
    expect((await readdir(path.join(dataDir, 'mnist'))).sort()).toEqual([
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
    ]);
  });

  it('checks a whole-file hash and yields an archive the CIFAR-10 loader reads', async () => {
    const archive = served.get('cifar-10-binary.tar.gz') ?? Buffer.alloc(0);
    const dataDir = freshDataDir();

    await downloadDataset('cifar-10', dataDir, {
      baseUrl: `${baseUrl}/`,
      checksums: [{ file: 'cifar-10-binary.tar.gz', sha256: sha256(archive), of: 'file' }],
    });

    const test = await loadCifar10('test', dataDir, {
      systemDirs: [],
      recordsPerBatch: CIFAR_RECORDS_PER_BATCH,
    });
    expect(test.count).toBe(CIFAR_RECORDS_PER_BATCH);
  });

  it('uses the injected fetch', async () => {
    const urls: string[] = [];
    const spy: typeof fetch = (input, init) => {
      urls.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      return fetch(input, init);
    };

    await downloadDataset('mnist', freshDataDir(), {
      baseUrl,
      checksums: mnistChecksums.slice(0, 1),
      fetch: spy,
    });

    expect(urls).toEqual([`${baseUrl}/train-images-idx3-ubyte.gz`]);
  });

  it('reports a refused connection after retrying', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    await expect(
      downloadDataset('mnist', freshDataDir(), {
        baseUrl: `http://127.0.0.1:${port}/`,
        checksums: mnistChecksums,
        retries: 1,
        ...fast,
      }),
    ).rejects.toThrow(/fetch failed \(.*ECONNREFUSED.*\) \(2 attempts\)/);
  });
});

describe('DATASET_SOURCES', () => {
  it('lists the official files with a SHA-256 each', () => {
    expect(DATASET_SOURCES.mnist.baseUrl).toBe(
      'https://storage.googleapis.com/cvdf-datasets/mnist/',
    );
    expect(DATASET_SOURCES['cifar-10'].files.map((f) => f.file)).toEqual([
      'cifar-10-binary.tar.gz',
    ]);
    for (const source of Object.values(DATASET_SOURCES)) {
      for (const f of source.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(DATASET_SOURCES['fashion-mnist'].files).toHaveLength(4);
  });
});

describe('hashOf', () => {
  it('hashes a file or its gunzipped content', async () => {
    const file = path.join(fx.dataDir, 'mnist', 'train-labels-idx1-ubyte.gz');
    const bytes = await readFile(file);

    expect(await hashOf(file, 'file')).toBe(sha256(bytes));
    expect(await hashOf(file, 'gunzipped')).toBe(sha256(gunzipSync(bytes)));
  });
});
