import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { logger } from '../logger.ts';
import { preprocessDigit } from '../ml/preprocess/digit.ts';
import { loadDataset } from './datasets/load.ts';
import type { LocateOptions } from './datasets/locations.ts';
import type { DatasetName, DatasetSplit } from './datasets/types.ts';
import { shuffledIndices, type LabelledImages, type OutlierSet } from './train.ts';

/** Digit-model inputs `[n, 28, 28, 1]` made by the photo pipeline, and how many it refused. */
export interface PipelineInputs {
  readonly inputs: Float32Array;
  readonly count: number;
  readonly rejected: number;
}

/**
 * Sends `count` seeded-random images of a data set through the photo pipeline
 * (`preprocessDigit`), as if a student had uploaded them. Images it refuses (no ink) are counted.
 */
export async function datasetThroughPipeline(
  data: LabelledImages,
  count: number,
  seed: string,
): Promise<PipelineInputs> {
  const idx = shuffledIndices(data.count, seedrandom(seed)).subarray(
    0,
    Math.min(count, data.count),
  );
  const per = data.height * data.width * data.channels;
  const pngs: Buffer[] = [];
  for (const i of idx) {
    const raw = Buffer.from(data.images.subarray(i * per, (i + 1) * per));
    const channels = data.channels === 1 ? 1 : 3;
    pngs.push(
      await sharp(raw, { raw: { width: data.width, height: data.height, channels } })
        .png()
        .toBuffer(),
    );
  }
  return pngsThroughPipeline(pngs);
}

/** Runs encoded images through `preprocessDigit`; see {@link datasetThroughPipeline}. */
export async function pngsThroughPipeline(pngs: readonly Uint8Array[]): Promise<PipelineInputs> {
  const inputs = new Float32Array(pngs.length * 784);
  let n = 0;
  let rejected = 0;
  for (const png of pngs) {
    try {
      inputs.set((await preprocessDigit(png, { preview: false })).input, n * 784);
      n++;
    } catch {
      rejected++;
    }
  }
  return { inputs: inputs.subarray(0, n * 784), count: n, rejected };
}

const SYLLABLES = [
  'ab',
  'ra',
  'ka',
  'da',
  'mo',
  'le',
  'ti',
  'no',
  'vy',
  'sh',
  'pri',
  'vet',
  'кот',
  'дом',
  'ма',
  'ша',
  'нет',
  'да',
  'ok',
  'hey',
  'lab',
  'cnn',
];

/**
 * The only fonts training renders text in (the Outlier Exposure words). They must stay apart from
 * the handwriting fonts that evaluate the digit model (`scripts/lib/eval-fonts.ts`), so the
 * rendered evaluation set measures writing styles training has never seen.
 */
export const WORD_FONTS: readonly string[] = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'];

/**
 * Renders seeded-random words (Latin and Cyrillic, 2-5 syllables, several fonts, sizes, slants
 * and stroke colours) as photos of writing: text is the commonest thing students send that is
 * not a digit. Each is a PNG.
 */
export async function renderWords(count: number, seed: string): Promise<Buffer[]> {
  const rng = seedrandom(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rng() * a.length)]!;
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const n = 2 + Math.floor(rng() * 4);
    let word = '';
    for (let k = 0; k < n; k++) word += pick(SYLLABLES);
    const size = 28 + Math.floor(rng() * 40);
    const w = Math.ceil(size * word.length * 0.7) + 40;
    const h = size * 2;
    const font = pick(WORD_FONTS);
    const style = rng() < 0.4 ? 'italic' : 'normal';
    const weight = rng() < 0.3 ? 'bold' : 'normal';
    const ink = pick(['#111111', '#1a2a8a', '#333333']);
    const angle = (rng() - 0.5) * 12;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="#f4f1ea"/><text x="20" y="${size * 1.3}" font-family="${font}" font-style="${style}" font-weight="${weight}" font-size="${size}" fill="${ink}" transform="rotate(${angle.toFixed(1)} ${w / 2} ${h / 2})">${word}</text></svg>`;
    out.push(await sharp(Buffer.from(svg)).png().toBuffer());
  }
  return out;
}

/**
 * The outlier set for training a digit classifier with Outlier Exposure: Fashion-MNIST and
 * CIFAR-10 *training* images (so their test sets stay held out for calibration) and rendered
 * words, all through the photo pipeline. Data sets that are not available are skipped with a
 * warning.
 * @param signal checked between the steps (each data set, the words): Ctrl-C need not wait for
 *   the whole set to be built.
 * @throws the signal's reason (an `AbortError` `DOMException` by default) when aborted.
 */
export async function buildDigitOutliers(
  dataDir: string,
  perSource: number,
  perBatch: number,
  locate: LocateOptions = {},
  signal?: AbortSignal,
): Promise<OutlierSet> {
  const parts: Float32Array[] = [];
  const sources: [DatasetName, DatasetSplit][] = [
    ['fashion-mnist', 'train'],
    ['cifar-10', 'train'],
  ];
  for (const [name, split] of sources) {
    // Building takes a while (CIFAR-10 loaded, images through the pipeline): Ctrl-C between steps.
    signal?.throwIfAborted();
    try {
      const data = await loadDataset(name, split, dataDir, locate);
      const p = await datasetThroughPipeline(data, perSource, `oe-${name}`);
      parts.push(p.inputs);
      logger.info({ dataset: name, count: p.count, rejected: p.rejected }, 'outlier images ready');
    } catch (e) {
      logger.warn(
        { dataset: name, err: (e as Error).message },
        'outlier data set unavailable, skipped',
      );
    }
  }
  signal?.throwIfAborted();
  const words = await pngsThroughPipeline(await renderWords(perSource, 'oe-words'));
  parts.push(words.inputs);
  const count = parts.reduce((s, p) => s + p.length / 784, 0);
  const inputs = new Float32Array(count * 784);
  parts.reduce((off, p) => (inputs.set(p, off), off + p.length), 0);
  return { inputs, count, perBatch };
}
