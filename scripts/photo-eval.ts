/**
 * Evaluation harness for the photo pipeline (`src/ml/preprocess/digit.ts`): composes MNIST test
 * digits into phone-photo-like scenes, one condition at a time, runs each scene through
 * `preprocessDigit`, and reports per condition
 * - the agreement of the result with the digit's own MNIST normalisation (Pearson correlation and
 *   mean absolute difference over the 784 pixels), against a naive "grey, resize to 28x28,
 *   invert" baseline;
 * - when a model exists at `models/lenet-mnist/`, the classification accuracy of both.
 * Scenes, results and a contact sheet per condition go to /tmp/photo-eval/ for inspection.
 *
 *   npx tsx scripts/photo-eval.ts [--n 20] [--seed 1] [--out /tmp/photo-eval]
 *
 * Nothing here ships: the MNIST images stay in /tmp.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import type { Tensor } from '@tensorflow/tfjs';
import { preprocessDigit } from '../src/ml/preprocess/digit.ts';
import { CONDITIONS, inkFromDigit } from './lib/photo-scenes.ts';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const N = Number(arg('n', '20'));
const SEED = arg('seed', '1');
const OUT = arg('out', '/tmp/photo-eval');
const MNIST_DIR = '/work/shared/data/mnist';
const MODEL_DIR = path.resolve('models/lenet-mnist');

/** Reads an IDX file (LeCun's MNIST format), checking its magic number. */
async function readIdx(file: string): Promise<{ dims: number[]; data: Uint8Array }> {
  const buf = gunzipSync(await readFile(file));
  const magic = buf.readUInt32BE(0);
  if (magic >>> 8 !== 0x08) throw new Error(`${file}: not an unsigned-byte IDX file`);
  const rank = magic & 0xff;
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + 4 + 4 * rank) };
}

/** The naive baseline: upright, grey, squashed to 28x28, inverted (dark ink assumed). */
async function naive(bytes: Uint8Array): Promise<Float32Array> {
  const raw = await sharp(bytes)
    .autoOrient()
    .flatten({ background: '#ffffff' })
    .greyscale()
    .resize(28, 28, { fit: 'fill' })
    .raw()
    .toBuffer();
  return Float32Array.from(raw, (v) => 1 - v / 255);
}

function correlation(a: Float32Array, b: Float32Array): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i] ?? 0;
    mb += b[i] ?? 0;
  }
  ma /= a.length;
  mb /= b.length;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = (a[i] ?? 0) - ma;
    const db = (b[i] ?? 0) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb || 1);
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] ?? 0) - (b[i] ?? 0));
  return s / a.length;
}

type Predict = (inputs: Float32Array[]) => Promise<number[]>;

/** Loads models/lenet-mnist/ with a file IOHandler, if it exists. */
async function loadModel(): Promise<Predict | undefined> {
  let topology: {
    modelTopology: unknown;
    weightsManifest: { paths: string[]; weights: unknown[] }[];
  };
  try {
    topology = JSON.parse(
      await readFile(path.join(MODEL_DIR, 'model.json'), 'utf8'),
    ) as typeof topology;
  } catch {
    return undefined;
  }
  const tf = await import('@tensorflow/tfjs');
  const buffers: Buffer[] = [];
  const specs: unknown[] = [];
  for (const group of topology.weightsManifest) {
    for (const p of group.paths) buffers.push(await readFile(path.join(MODEL_DIR, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel({
    load: () =>
      Promise.resolve({
        modelTopology: topology.modelTopology as object,
        weightSpecs: specs as never,
        weightData,
      }),
  });
  return async (inputs) => {
    const x = tf.tensor4d(Float32Array.from(inputs.flatMap((a) => Array.from(a))), [
      inputs.length,
      28,
      28,
      1,
    ]);
    const y = model.predict(x) as Tensor;
    const classes = Array.from(await y.argMax(-1).data());
    tf.dispose([x, y]);
    return classes;
  };
}

const toPng = (img: Float32Array, scale = 3) =>
  sharp(Buffer.from(Array.from(img, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255))), {
    raw: { width: 28, height: 28, channels: 1 },
  })
    .resize(28 * scale, 28 * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();

/** Rows of [reference | pipeline | naive] tiles. */
async function contactSheet(rows: Float32Array[][], file: string): Promise<void> {
  const tile = 28 * 3;
  const gap = 4;
  const cols = 3;
  const perRow = 2; // two samples side by side
  const lines = Math.ceil(rows.length / perRow);
  const width = perRow * (cols * tile + gap * cols) + gap;
  const height = lines * (tile + gap) + gap;
  const composites: sharp.OverlayOptions[] = [];
  for (let k = 0; k < rows.length; k++) {
    const row = rows[k] ?? [];
    const left = (k % perRow) * (cols * tile + gap * cols) + gap;
    const top = Math.floor(k / perRow) * (tile + gap) + gap;
    for (let c = 0; c < row.length; c++) {
      composites.push({
        input: await toPng(row[c] ?? new Float32Array(784)),
        left: left + c * (tile + 1),
        top,
      });
    }
  }
  await sharp({ create: { width, height, channels: 3, background: '#804040' } })
    .composite(composites)
    .png()
    .toFile(file);
}

async function main(): Promise<void> {
  const images = await readIdx(path.join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
  const labels = await readIdx(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
  const count = images.dims[0] ?? 0;
  const predict = await loadModel();
  console.log(
    `photo-eval: ${N} MNIST test digits per condition, seed ${SEED}; model: ${predict ? MODEL_DIR : 'none (correlation only)'}`,
  );
  console.log(
    'condition         corr(pipe) corr(naive)  MAD(pipe) MAD(naive)  no_ink  ms(median)' +
      (predict ? '  acc(pipe) acc(naive) acc(ref)' : ''),
  );
  const only = arg('only', '');
  for (const [name, make] of Object.entries(CONDITIONS)) {
    if (only && !only.split(',').includes(name)) continue;
    const rng = seedrandom(`${SEED}:${name}`);
    const dir = path.join(OUT, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const refs: Float32Array[] = [];
    const outs: Float32Array[] = [];
    const naives: Float32Array[] = [];
    const truth: number[] = [];
    const ms: number[] = [];
    let noInk = 0;
    const sheet: Float32Array[][] = [];
    for (let k = 0; k < N; k++) {
      const idx = Math.floor(rng() * count);
      const digit = images.data.subarray(idx * 784, (idx + 1) * 784);
      const ref = Float32Array.from(digit, (v) => v / 255);
      const scene = await make((size, pen) => inkFromDigit(digit, size, pen), rng);
      await writeFile(path.join(dir, `${k}-scene.${scene.ext}`), scene.bytes);
      const t = performance.now();
      let out: Float32Array;
      try {
        out = (await preprocessDigit(scene.bytes, { preview: false })).input;
      } catch (e) {
        noInk++;
        out = new Float32Array(784);
        console.warn(`  ${name} #${k}: ${(e as Error).message}`);
      }
      ms.push(performance.now() - t);
      const nv = await naive(scene.bytes);
      await writeFile(path.join(dir, `${k}-out.png`), await toPng(out, 4));
      refs.push(ref);
      outs.push(out);
      naives.push(nv);
      truth.push(labels.data[idx] ?? -1);
      sheet.push([ref, out, nv]);
    }
    await contactSheet(sheet, path.join(OUT, `${name}-sheet.png`));
    const mean = (f: (i: number) => number) => outs.reduce((s, _, i) => s + f(i), 0) / outs.length;
    ms.sort((a, b) => a - b);
    let line =
      `${name.padEnd(18)}${mean((i) => correlation(outs[i]!, refs[i]!))
        .toFixed(3)
        .padStart(10)}` +
      `${mean((i) => correlation(naives[i]!, refs[i]!))
        .toFixed(3)
        .padStart(12)}` +
      `${mean((i) => meanAbsDiff(outs[i]!, refs[i]!))
        .toFixed(3)
        .padStart(11)}` +
      `${mean((i) => meanAbsDiff(naives[i]!, refs[i]!))
        .toFixed(3)
        .padStart(11)}` +
      `${String(noInk).padStart(8)}${(ms[Math.floor(ms.length / 2)] ?? 0).toFixed(0).padStart(12)}`;
    if (predict) {
      const acc = async (xs: Float32Array[]) => {
        const p = await predict(xs);
        return p.filter((c, i) => c === truth[i]).length / xs.length;
      };
      line += `${(await acc(outs)).toFixed(3).padStart(11)}${(await acc(naives)).toFixed(3).padStart(11)}${(await acc(refs)).toFixed(3).padStart(9)}`;
    }
    console.log(line);
  }
  console.log(`scenes, outputs and <condition>-sheet.png (reference | pipeline | naive) in ${OUT}`);
}

await main();
