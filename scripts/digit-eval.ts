/**
 * Accuracy of digit models on photos, through exactly the bot's pipeline
 * (`preprocessForModel`, then the model), on two sets:
 * - `real`: `../shared/data/real-digits/` (real photos, scans and drawings by about 23 writers;
 *   third-party: read here, never copied into the repository), per source and per kind;
 * - `rendered`: handwriting fonts (the evaluation fonts below, none of which any training recipe
 *   uses) in several writing styles (slant, rotation, hairline to marker, hollow outline),
 *   composed into phone-photo scenes (`lib/photo-scenes.ts`: plain paper, squared paper, small in
 *   a big page, noise, EXIF rotation, transparent PNG, blackboard chalk), per condition, style
 *   and font. Seeded, so every run draws the same scenes.
 *
 *   npx tsx scripts/digit-eval.ts [--models lenet-mnist,digits-photo] [--set real,rendered]
 *     [--n 30] [--seed 1] [--json out.json] [--misses] [--cache /tmp/digit-eval-cache]
 *
 * Prints one table per set and breakdown, and with `--json` writes every figure. Needs the
 * fonts of {@link EVAL_FONTS} (Debian packages in `.ci/run`'s font line); missing ones are
 * skipped with a warning.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import Table from 'cli-table3';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../src/ml/model-io.ts';
import { readModelMeta, type ModelMeta } from '../src/ml/model-meta.ts';
import { preprocessForModel } from '../src/ml/preprocess/for-model.ts';
import { CONDITIONS, between, type Ink, type Rng, type Scene } from './lib/photo-scenes.ts';
import { EVAL_FONTS } from './lib/eval-fonts.ts';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const MODELS = arg('models', 'lenet-mnist').split(',');
const SETS = arg('set', 'real,rendered').split(',');
const N = Number(arg('n', '30'));
const SEED = arg('seed', '1');
const JSON_OUT = arg('json', '');
const SHOW_MISSES = args.includes('--misses');
const REAL_DIR = path.resolve(arg('real', '../shared/data/real-digits'));
const LIMITS = { maxBytes: 20_000_000, maxPixels: 40_000_000 };

/** Writing styles applied to a glyph before it goes into a scene. */
const STYLES = ['plain', 'slant', 'rotated', 'hairline', 'marker', 'hollow'] as const;
type Style = (typeof STYLES)[number];

type Predict = (inputs: Float32Array[]) => Promise<number[]>;

async function openModel(id: string): Promise<{ meta: ModelMeta; predict: Predict }> {
  const dir = existsSync(id) ? id : path.resolve('models', id);
  const meta = await readModelMeta(dir);
  const model = await loadModel(dir);
  const [h, w, c] = meta.inputShape;
  return {
    meta,
    predict: async (inputs) => {
      const out: number[] = [];
      for (let s = 0; s < inputs.length; s += 64) {
        const chunk = inputs.slice(s, s + 64);
        const flat = new Float32Array(chunk.length * h * w * c);
        chunk.forEach((a, i) => flat.set(a, i * h * w * c));
        const y = tf.tidy(() =>
          (model.predict(tf.tensor4d(flat, [chunk.length, h, w, c])) as tf.Tensor).argMax(-1),
        );
        out.push(...Array.from(await y.data()));
        y.dispose();
      }
      return out;
    },
  };
}

/** One evaluated picture: its groups (source, kind, condition...), truth, and model input. */
interface Sample {
  readonly name: string;
  readonly label: number;
  readonly groups: Readonly<Record<string, string>>;
  readonly bytes: Uint8Array;
}

async function realSamples(): Promise<Sample[]> {
  const manifest = await readFile(path.join(REAL_DIR, 'MANIFEST.tsv'), 'utf8');
  const kinds = new Map<string, string>();
  for (const line of manifest.split('\n').slice(1)) {
    const cols = line.split('\t');
    if (cols[0]) kinds.set(cols[0], cols[5] ?? '?');
  }
  const files = (await readdir(REAL_DIR)).filter((f) => /^\d_.+\.(png|jpe?g)$/i.test(f)).sort();
  return Promise.all(
    files.map(async (f) => ({
      name: f,
      label: Number(f[0]),
      groups: { source: f.split('_')[1] ?? '?', kind: kinds.get(f) ?? '?' },
      bytes: await readFile(path.join(REAL_DIR, f)),
    })),
  );
}

/** Grey glyph of `digit` (white on black, tight), rendered by pango through sharp. */
async function glyph(
  font: { file: string; family: string },
  digit: number,
): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp({
    text: { text: String(digit), fontfile: font.file, font: `${font.family} 96`, dpi: 150 },
  })
    .extractChannel(0)
    .trim({ threshold: 1 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

/**
 * The ink of a glyph in a writing style, `size` px square: the glyph is sheared (slant) or
 * rotated, fitted in 75% of the square, blurred and re-thresholded (a low threshold thickens the
 * stroke, a high one thins it), or turned into its outline (hollow).
 */
async function styledInk(
  g: { data: Buffer; width: number; height: number },
  style: Style,
  size: number,
  pen: number,
  rng: Rng,
): Promise<Ink> {
  let img = sharp(g.data, { raw: { width: g.width, height: g.height, channels: 1 } }).extend({
    top: 20,
    bottom: 20,
    left: 20,
    right: 20,
    background: '#000000',
  });
  if (style === 'slant' || style === 'rotated') {
    const deg = between(rng, 12, 30) * (rng() < 0.5 ? -1 : 1);
    const t = (deg * Math.PI) / 180;
    const m: [number, number, number, number] =
      style === 'slant'
        ? [1, -Math.tan(t), 0, 1]
        : [Math.cos(t), -Math.sin(t), Math.sin(t), Math.cos(t)];
    const r = await img
      .affine(m, { background: '#000000' })
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    img = sharp(r.data, { raw: { width: r.info.width, height: r.info.height, channels: 1 } });
  }
  const inner = Math.round(size * 0.75);
  const fitted = await img
    .trim({ threshold: 1 })
    .resize(inner, inner, { fit: 'contain', background: '#000000' })
    .extend({
      top: Math.floor((size - inner) / 2),
      bottom: Math.ceil((size - inner) / 2),
      left: Math.floor((size - inner) / 2),
      right: Math.ceil((size - inner) / 2),
      background: '#000000',
    })
    .extractChannel(0)
    .raw()
    .toBuffer();
  const blurred = async (src: Buffer | Uint8Array, sigma: number): Promise<Buffer> =>
    sharp(src, { raw: { width: size, height: size, channels: 1 } })
      .blur(sigma)
      .extractChannel(0)
      .raw()
      .toBuffer();
  const soft = (v: number, centre: number): number => clamp01((v - centre + 20) / 40);
  const alpha = new Float32Array(size * size);
  if (style === 'hollow') {
    // Thicken to a broad stroke, then keep a band along its edge.
    const thick = await blurred(fitted, size / 40);
    const mask = Buffer.from(thick.map((v) => (v > 25 ? 255 : 0)));
    const eroded = await blurred(mask, size / 90);
    for (let i = 0; i < alpha.length; i++) {
      alpha[i] = clamp01(soft(thick[i] ?? 0, 25) - soft(eroded[i] ?? 0, 235));
    }
    return { alpha, size };
  }
  const sigma = Math.max(0.5, size / 120);
  const b = await blurred(fitted, style === 'marker' ? size / 45 : sigma);
  const centre =
    style === 'hairline'
      ? 200
      : style === 'marker'
        ? 30
        : Math.min(220, Math.max(40, 128 - pen * 80));
  for (let i = 0; i < alpha.length; i++) alpha[i] = soft(b[i] ?? 0, centre);
  return { alpha, size };
}

/**
 * The rendered set, drawn once per seed and size and kept in `--cache` (default
 * `/tmp/digit-eval-cache`): drawing 12-megapixel scenes takes minutes, preprocessing them seconds.
 */
async function renderedSamples(): Promise<Sample[]> {
  const dir = path.join(arg('cache', '/tmp/digit-eval-cache'), `seed${SEED}-n${N}`);
  const index = path.join(dir, 'index.json');
  if (existsSync(index)) {
    const listed = JSON.parse(await readFile(index, 'utf8')) as Omit<Sample, 'bytes'>[];
    return Promise.all(
      listed.map(async (s) => ({ ...s, bytes: await readFile(path.join(dir, s.name)) })),
    );
  }
  const samples = await drawRenderedSamples();
  await mkdir(dir, { recursive: true });
  for (const s of samples) await writeFile(path.join(dir, s.name), s.bytes);
  await writeFile(index, JSON.stringify(samples.map(({ bytes: _, ...rest }) => rest)));
  return samples;
}

async function drawRenderedSamples(): Promise<Sample[]> {
  const fonts = EVAL_FONTS.filter((f) => {
    if (existsSync(f.file)) return true;
    console.warn(`digit-eval: font ${f.file} missing, skipped`);
    return false;
  });
  if (fonts.length === 0) throw new Error('no evaluation font installed (see .ci/run)');
  const glyphs = new Map<string, { data: Buffer; width: number; height: number }>();
  const out: Sample[] = [];
  for (const [condition, make] of Object.entries(CONDITIONS)) {
    const rng = seedrandom(`${SEED}:rendered:${condition}`);
    for (let k = 0; k < N; k++) {
      const label = k % 10;
      const font = fonts[Math.floor(rng() * fonts.length)]!;
      const style = STYLES[Math.floor(rng() * STYLES.length)]!;
      const key = `${font.file}:${label}`;
      let g = glyphs.get(key);
      if (!g) {
        g = await glyph(font, label);
        glyphs.set(key, g);
      }
      const gg = g;
      const scene: Scene = await make((size, pen) => styledInk(gg, style, size, pen, rng), rng);
      out.push({
        name: `${condition}-${k}-${label}-${font.family.replaceAll(' ', '')}-${style}.${scene.ext}`,
        label,
        groups: { condition, style, font: font.family },
        bytes: scene.bytes,
      });
    }
  }
  return out;
}

interface Tally {
  right: number;
  total: number;
}

async function evaluate(
  set: string,
  samples: Sample[],
  models: { id: string; meta: ModelMeta; predict: Predict }[],
): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  const keys = Object.keys(samples[0]?.groups ?? {});
  for (const m of models) {
    const inputs: Float32Array[] = [];
    const failed: string[] = [];
    for (const s of samples) {
      try {
        inputs.push((await preprocessForModel(m.meta, s.bytes, LIMITS)).data);
      } catch (e) {
        failed.push(`${s.name}: ${(e as Error).message}`);
        inputs.push(new Float32Array(m.meta.inputShape.reduce((a, b) => a * b, 1)));
      }
    }
    const pred = await m.predict(inputs);
    const by: Record<string, Record<string, Tally>> = {};
    const all: Tally = { right: 0, total: 0 };
    const misses: string[] = [];
    samples.forEach((s, i) => {
      const ok = pred[i] === s.label;
      all.total++;
      if (ok) all.right++;
      else misses.push(`${s.name} -> ${pred[i]}`);
      for (const k of keys) {
        const g = (by[k] ??= {});
        const t = (g[s.groups[k] ?? '?'] ??= { right: 0, total: 0 });
        t.total++;
        if (ok) t.right++;
      }
    });
    result[m.id] = {
      accuracy: all.right / all.total,
      right: all.right,
      total: all.total,
      by,
      misses,
      failed,
    };
  }
  const pct = (t: Tally | undefined): string =>
    t ? `${((100 * t.right) / t.total).toFixed(1)}` : '-';
  for (const k of keys) {
    const groups = [...new Set(samples.map((s) => s.groups[k] ?? '?'))].sort();
    const table = new Table({
      style: { head: [], border: [] },
      head: [`${set}: ${k}`, 'n', ...models.map((m) => m.id)],
    });
    for (const g of groups) {
      const n = samples.filter((s) => s.groups[k] === g).length;
      table.push([
        g,
        n,
        ...models.map((m) =>
          pct((result[m.id] as { by: Record<string, Record<string, Tally>> }).by[k]?.[g]),
        ),
      ]);
    }
    table.push([
      'all',
      samples.length,
      ...models.map((m) => {
        const r = result[m.id] as Tally;
        return `${pct(r)} (${r.right}/${r.total})`;
      }),
    ]);
    console.log(table.toString());
  }
  if (SHOW_MISSES) {
    for (const m of models) {
      const r = result[m.id] as { misses: string[]; failed: string[] };
      console.log(`${set} misses of ${m.id}:\n  ${r.misses.join('\n  ')}`);
      if (r.failed.length) console.log(`  preprocessing failed:\n  ${r.failed.join('\n  ')}`);
    }
  }
  return result;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const models = await Promise.all(MODELS.map(async (id) => ({ id, ...(await openModel(id)) })));
  const report: Record<string, unknown> = { seed: SEED, n: N, models: MODELS };
  if (SETS.includes('real')) report.real = await evaluate('real', await realSamples(), models);
  if (SETS.includes('rendered')) {
    const samples = await renderedSamples();
    report.rendered = await evaluate('rendered', samples, models);
  }
  if (JSON_OUT) await writeFile(JSON_OUT, JSON.stringify(report, null, 2));
}

await main();
