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

type Rng = () => number;
const between = (rng: Rng, a: number, b: number): number => a + (b - a) * rng();
/** Roughly Gaussian noise, sum of three uniforms, standard deviation ~ `sd`. */
const noise = (rng: Rng, sd: number): number => (rng() + rng() + rng() - 1.5) * 2 * sd;

interface Scene {
  bytes: Uint8Array;
  ext: 'jpg' | 'png';
}

interface Ink {
  /** Ink coverage 0..1 of the upscaled digit, `size x size`. */
  alpha: Float32Array;
  size: number;
}

/**
 * Upscales a 28x28 MNIST digit smoothly to `size` px and reshapes its stroke by where the soft
 * threshold sits on the smooth upscaled profile: `pen` < 0 gives a thinner stroke (ballpoint), > 0
 * a thicker one (marker); the result is crisp ink with anti-aliased edges.
 */
async function inkFromDigit(digit: Uint8Array, size: number, pen: number): Promise<Ink> {
  const raw = await sharp(Buffer.from(digit), { raw: { width: 28, height: 28, channels: 1 } })
    .resize(size, size, { kernel: 'cubic' })
    .blur(Math.max(0.3, size / 80))
    .extractChannel(0)
    .raw()
    .toBuffer();
  const centre = Math.min(225, Math.max(30, 128 - pen * 90));
  const soft = 40;
  const alpha = new Float32Array(size * size);
  for (let i = 0; i < alpha.length; i++) {
    alpha[i] = Math.min(1, Math.max(0, ((raw[i] ?? 0) - centre + soft / 2) / soft));
  }
  return { alpha, size };
}

interface PaperSpec {
  width: number;
  height: number;
  paper: [number, number, number];
  ink: [number, number, number];
  grid?: { period: number; colour: [number, number, number]; angle: number; strength: number };
  /** Lighting multiplier from `1` down to `1 - gradient` across the page. */
  gradient: number;
  noise: number;
  /** Chalk: ink coverage broken by grain. */
  grain?: number;
}

/** Renders paper (+ grid) under uneven light with the ink composited at (x, y). */
function renderScene(spec: PaperSpec, ink: Ink, x0: number, y0: number, rng: Rng): Buffer {
  const { width: w, height: h } = spec;
  const out = Buffer.alloc(w * h * 3);
  const gx = between(rng, -1, 1);
  const gy = between(rng, -1, 1);
  const norm = Math.hypot(gx, gy) || 1;
  const cos = Math.cos(spec.grid?.angle ?? 0);
  const sin = Math.sin(spec.grid?.angle ?? 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Lighting: a linear ramp in a random direction.
      const t = ((x / w - 0.5) * gx + (y / h - 0.5) * gy) / norm + 0.5;
      const light = 1 - spec.gradient * Math.min(1, Math.max(0, t));
      let c0 = spec.paper[0];
      let c1 = spec.paper[1];
      let c2 = spec.paper[2];
      if (spec.grid) {
        const u = x * cos + y * sin;
        const v = -x * sin + y * cos;
        const p = spec.grid.period;
        const du = Math.abs((((u % p) + p) % p) - p / 2) - (p / 2 - 1);
        const dv = Math.abs((((v % p) + p) % p) - p / 2) - (p / 2 - 1);
        const g = Math.max(0, Math.min(1, Math.max(du, dv))) * spec.grid.strength;
        c0 += (spec.grid.colour[0] - c0) * g;
        c1 += (spec.grid.colour[1] - c1) * g;
        c2 += (spec.grid.colour[2] - c2) * g;
      }
      const ix = x - x0;
      const iy = y - y0;
      if (ix >= 0 && iy >= 0 && ix < ink.size && iy < ink.size) {
        let a = ink.alpha[iy * ink.size + ix] ?? 0;
        if (spec.grain) a *= 1 - spec.grain * rng();
        c0 += (spec.ink[0] - c0) * a;
        c1 += (spec.ink[1] - c1) * a;
        c2 += (spec.ink[2] - c2) * a;
      }
      const n = noise(rng, spec.noise);
      const i = (y * w + x) * 3;
      out[i] = Math.max(0, Math.min(255, c0 * light + n));
      out[i + 1] = Math.max(0, Math.min(255, c1 * light + n));
      out[i + 2] = Math.max(0, Math.min(255, c2 * light + n));
    }
  }
  return out;
}

const rawImage = (buf: Buffer, w: number, h: number, channels: 3 | 4 = 3) =>
  sharp(buf, { raw: { width: w, height: h, channels } });

const CONDITIONS: Record<string, (digit: Uint8Array, rng: Rng) => Promise<Scene>> = {
  /** Black ballpoint on plain white paper, centred, mild light falloff. */
  'dark-on-white': async (digit, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 380, 700));
    const ink = await inkFromDigit(digit, size, between(rng, -1, 0.3));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [238, 236, 230],
      ink: [30, 30, 40],
      gradient: 0.15,
      noise: 4,
    };
    const raw = renderScene(
      spec,
      ink,
      Math.round((w - size) * between(rng, 0.3, 0.7)),
      Math.round((h - size) * between(rng, 0.3, 0.7)),
      rng,
    );
    return { bytes: await rawImage(raw, w, h).jpeg({ quality: 88 }).toBuffer(), ext: 'jpg' };
  },
  /** Blue ballpoint on squared paper (tilted light-blue grid), lighting gradient. */
  'blue-squared': async (digit, rng) => {
    const [w, h] = [1500, 2000];
    const period = Math.round(between(rng, 45, 75));
    const size = Math.round(period * between(rng, 2, 4));
    const ink = await inkFromDigit(digit, size, between(rng, -0.7, -0.1));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [240, 240, 236],
      ink: [35, 55, 150],
      grid: {
        period,
        colour: [150, 175, 210],
        angle: between(rng, -0.06, 0.06),
        strength: between(rng, 0.5, 0.9),
      },
      gradient: between(rng, 0.2, 0.45),
      noise: 5,
    };
    const raw = renderScene(
      spec,
      ink,
      Math.round((w - size) * between(rng, 0.2, 0.8)),
      Math.round((h - size) * between(rng, 0.2, 0.8)),
      rng,
    );
    return { bytes: await rawImage(raw, w, h).jpeg({ quality: 85 }).toBuffer(), ext: 'jpg' };
  },
  /** A 150-px digit far from the centre of a 12-megapixel photo. */
  'small-offcentre': async (digit, rng) => {
    const [w, h] = [3000, 4000];
    const size = Math.round(between(rng, 150, 200));
    const ink = await inkFromDigit(digit, size, between(rng, -0.7, 0));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [232, 232, 228],
      ink: [25, 25, 35],
      gradient: 0.25,
      noise: 5,
    };
    const x = rng() < 0.5 ? between(rng, 150, 700) : between(rng, w - 900, w - 350);
    const y = rng() < 0.5 ? between(rng, 150, 900) : between(rng, h - 1100, h - 350);
    const raw = renderScene(spec, ink, Math.round(x), Math.round(y), rng);
    return { bytes: await rawImage(raw, w, h).jpeg({ quality: 85 }).toBuffer(), ext: 'jpg' };
  },
  /** Strong uneven lighting, heavy sensor noise, low-quality JPEG, pencil-grey ink. */
  'gradient-noise': async (digit, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 400, 700));
    const ink = await inkFromDigit(digit, size, between(rng, -0.8, 0));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [225, 222, 215],
      ink: [90, 90, 95],
      gradient: between(rng, 0.45, 0.65),
      noise: 14,
    };
    const raw = renderScene(
      spec,
      ink,
      Math.round((w - size) * between(rng, 0.2, 0.8)),
      Math.round((h - size) * between(rng, 0.2, 0.8)),
      rng,
    );
    return { bytes: await rawImage(raw, w, h).jpeg({ quality: 55 }).toBuffer(), ext: 'jpg' };
  },
  /** Pixels stored sideways with EXIF orientation 6 (display = rotate 90 degrees clockwise). */
  'exif-sideways': async (digit, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 400, 700));
    const ink = await inkFromDigit(digit, size, between(rng, -0.8, 0.3));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [236, 234, 228],
      ink: [30, 30, 45],
      gradient: 0.2,
      noise: 5,
    };
    const raw = renderScene(spec, ink, Math.round((w - size) / 2), Math.round((h - size) / 2), rng);
    const stored = await rawImage(raw, w, h)
      .rotate(270)
      .jpeg({ quality: 88 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    return { bytes: stored, ext: 'jpg' };
  },
  /** A dark digit drawn on a transparent canvas (a drawing app's PNG). */
  'transparent-png': async (digit, rng) => {
    const side = 600;
    const size = Math.round(between(rng, 380, 560));
    const ink = await inkFromDigit(digit, size, between(rng, -0.5, 0.5));
    const rgba = Buffer.alloc(side * side * 4);
    const ox = Math.round((side - size) / 2);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const i = ((y + ox) * side + x + ox) * 4;
        rgba[i + 3] = Math.round((ink.alpha[y * size + x] ?? 0) * 255);
      }
    }
    return { bytes: await rawImage(rgba, side, side, 4).png().toBuffer(), ext: 'png' };
  },
  /** Chalk on a dark green-grey blackboard: light, grainy strokes. */
  chalk: async (digit, rng) => {
    const [w, h] = [1600, 1200];
    const size = Math.round(between(rng, 400, 800));
    const ink = await inkFromDigit(digit, size, between(rng, -0.5, 0.5));
    const spec: PaperSpec = {
      width: w,
      height: h,
      paper: [between(rng, 35, 60), between(rng, 55, 75), between(rng, 45, 60)],
      ink: [225, 228, 220],
      gradient: between(rng, 0.1, 0.35),
      noise: 8,
      grain: 0.45,
    };
    const raw = renderScene(
      spec,
      ink,
      Math.round((w - size) * between(rng, 0.2, 0.8)),
      Math.round((h - size) * between(rng, 0.2, 0.8)),
      rng,
    );
    return { bytes: await rawImage(raw, w, h).jpeg({ quality: 85 }).toBuffer(), ext: 'jpg' };
  },
};

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
      const scene = await make(digit, rng);
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
