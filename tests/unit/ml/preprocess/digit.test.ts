import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../../src/errors.ts';
import {
  centreOfMass,
  digitShapeWarnings,
  preprocessDigit,
} from '../../../../src/ml/preprocess/digit.ts';

interface Page {
  width: number;
  height: number;
  paper?: string;
  ink?: string;
  /** Digit box: left, top, size (the drawing is in a 100 x 140 box scaled to `size` high). */
  at?: [number, number, number];
  stroke?: number;
  grid?: number;
  gradient?: boolean;
}

const SEVEN = 'M15 15 L85 15 L40 135';
const ZERO =
  'M50 10 C15 10 10 60 10 70 C10 120 30 130 50 130 C70 130 90 120 90 70 C90 20 80 10 50 10';
const ONE = 'M50 8 L50 132';

/** A synthetic photo: paper (optionally squared, optionally unevenly lit) and one drawn digit. */
async function page(
  path: string | undefined,
  p: Page,
  format: 'png' | 'jpeg' = 'png',
): Promise<Buffer> {
  const { width: w, height: h } = p;
  let grid = '';
  if (p.grid) {
    for (let x = 0; x < w; x += p.grid)
      grid += `<line x1="${x}" y1="0" x2="${x}" y2="${h}" stroke="#9ab0d0" stroke-width="2"/>`;
    for (let y = 0; y < h; y += p.grid)
      grid += `<line x1="0" y1="${y}" x2="${w}" y2="${y}" stroke="#9ab0d0" stroke-width="2"/>`;
  }
  const [x = 0, y = 0, size = 100] = p.at ?? [];
  const k = size / 140;
  const digit = path
    ? `<path d="${path}" transform="translate(${x} ${y}) scale(${k})" fill="none" stroke="${p.ink ?? '#202020'}" stroke-width="${(p.stroke ?? 10) / k}" stroke-linecap="round" stroke-linejoin="round"/>`
    : '';
  const shade = p.gradient
    ? `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.55"/></linearGradient></defs><rect width="${w}" height="${h}" fill="url(#g)"/>`
    : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="${w}" height="${h}" fill="${p.paper ?? '#f0f0ea'}"/>${grid}${digit}${shade}</svg>`;
  const img = sharp(Buffer.from(svg));
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 85 }).toBuffer();
}

function bbox(input: Float32Array) {
  let x0 = 28;
  let y0 = 28;
  let x1 = -1;
  let y1 = -1;
  for (let i = 0; i < 784; i++) {
    if ((input[i] ?? 0) <= 0.1) continue;
    const x = i % 28;
    const y = Math.floor(i / 28);
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  return { width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Reference: the same stroke drawn straight into MNIST's frame (20 px box, white on black). */
async function reference(path: string, width: number): Promise<Float32Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="#000"/><path d="${path}" transform="translate(${14 - (20 * width) / 280} 4) scale(${20 / 140})" fill="none" stroke="#fff" stroke-width="${2.6 / (20 / 140)}" stroke-linecap="round"/></svg>`;
  const raw = await sharp(Buffer.from(svg)).extractChannel(0).raw().toBuffer();
  return Float32Array.from(raw, (v) => v / 255);
}

/** Best correlation over shifts of up to 2 px: the reference is centred by box, not by mass. */
function correlation(a: Float32Array, b: Float32Array): number {
  let best = -1;
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const shifted = new Float32Array(784);
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const sx = x - dx;
          const sy = y - dy;
          if (sx >= 0 && sy >= 0 && sx < 28 && sy < 28) shifted[y * 28 + x] = b[sy * 28 + sx] ?? 0;
        }
      }
      best = Math.max(best, pearson(a, shifted));
    }
  }
  return best;
}

function pearson(a: Float32Array, b: Float32Array): number {
  const mean = (v: Float32Array) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = (a[i] ?? 0) - ma;
    const db = (b[i] ?? 0) - mb;
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  return ab / Math.sqrt(aa * bb);
}

async function errorId(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UserError) return e.id;
    throw e;
  }
  return 'no error';
}

function expectMnistLike(input: Float32Array): void {
  expect(input).toHaveLength(784);
  expect(Math.min(...input)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...input)).toBeLessThanOrEqual(1);
  expect(Math.max(...input)).toBeGreaterThan(0.9);
  const com = centreOfMass(input);
  expect(Math.abs(com.x - 14)).toBeLessThan(0.5);
  expect(Math.abs(com.y - 14)).toBeLessThan(0.5);
  const box = bbox(input);
  expect(Math.max(box.width, box.height)).toBeLessThanOrEqual(21);
  expect(Math.max(box.width, box.height)).toBeGreaterThanOrEqual(19);
}

describe('preprocessDigit', () => {
  it('normalises a dark 7 on white paper like MNIST: 784 values, 20 px box, centred by mass', async () => {
    const bytes = await page(SEVEN, { width: 600, height: 800, at: [250, 300, 300], stroke: 14 });
    const { input, stats, preview } = await preprocessDigit(bytes);
    expectMnistLike(input);
    expect(stats.polarity).toBe('dark-ink');
    expect(bbox(input).height).toBeGreaterThanOrEqual(19);
    expect(correlation(input, await reference(SEVEN, 100))).toBeGreaterThan(0.8);
    expect(Array.from(preview.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
  });

  it('reads chalk-like light ink on a dark board as light ink', async () => {
    const bytes = await page(ZERO, {
      width: 800,
      height: 600,
      paper: '#2f4a3c',
      ink: '#e0e0d8',
      at: [300, 150, 300],
      stroke: 16,
    });
    const { input, stats } = await preprocessDigit(bytes);
    expect(stats.polarity).toBe('light-ink');
    expectMnistLike(input);
    expect(correlation(input, await reference(ZERO, 100))).toBeGreaterThan(0.8);
    // A ring: the centre stays dark.
    expect(input[14 * 28 + 14]).toBeLessThan(0.2);
  });

  it('finds and crops a small digit far from the centre of a large photo', async () => {
    const bytes = await page(
      ONE,
      { width: 3000, height: 4000, at: [2500, 3500, 150], stroke: 10, gradient: true },
      'jpeg',
    );
    const { input, stats } = await preprocessDigit(bytes);
    expectMnistLike(input);
    expect(stats.bboxAspect).toBeLessThan(0.4);
    // A 1 stays a vertical bar in the middle columns.
    expect(bbox(input).width).toBeLessThanOrEqual(6);
  });

  it('removes the grid of squared paper and copes with a lighting gradient', async () => {
    const bytes = await page(
      SEVEN,
      {
        width: 900,
        height: 1200,
        grid: 40,
        gradient: true,
        ink: '#203c9a',
        at: [300, 400, 260],
        stroke: 8,
      },
      'jpeg',
    );
    const { input, stats } = await preprocessDigit(bytes);
    expectMnistLike(input);
    expect(stats.components).toBeLessThanOrEqual(2);
    expect(correlation(input, await reference(SEVEN, 100))).toBeGreaterThan(0.75);
  });

  it('thickens a thin pen stroke towards MNIST stroke width', async () => {
    const bytes = await page(SEVEN, { width: 1000, height: 1000, at: [350, 300, 400], stroke: 3 });
    const { input, stats } = await preprocessDigit(bytes);
    expect(stats.strokeAdjust).toBeGreaterThan(0);
    const bright = input.filter((v) => v > 0.5).length;
    expect(bright).toBeGreaterThan(45); // MNIST digits light up ~100-150 pixels
  });

  it('refuses a blank squared page as having no ink', async () => {
    const bytes = await page(
      undefined,
      { width: 900, height: 1200, grid: 40, gradient: true },
      'jpeg',
    );
    expect(await errorId(preprocessDigit(bytes))).toBe('image.no_ink');
  });

  it('refuses a blank white page as having no ink', async () => {
    expect(await errorId(preprocessDigit(await page(undefined, { width: 400, height: 300 })))).toBe(
      'image.no_ink',
    );
  });

  it('passes decoder errors through', async () => {
    expect(await errorId(preprocessDigit(Buffer.from('just text')))).toBe('image.text');
  });

  it('warns that a wide scribble is not shaped like a digit', async () => {
    const word =
      'M10 70 C20 40 30 100 40 70 C50 40 60 100 70 70 C80 40 90 100 100 70 C110 40 120 100 130 70 C140 40 150 100 160 70 C170 40 180 100 190 70 C200 40 210 100 220 70 C230 40 240 100 250 70';
    const bytes = await page(word, { width: 1200, height: 600, at: [200, 200, 200], stroke: 6 });
    const { stats } = await preprocessDigit(bytes);
    expect(digitShapeWarnings(stats)).toContain('wide');
  });

  it('accepts an MNIST-sized 28x28 white-on-black image unchanged in spirit', async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="#000"/><path d="${ONE}" transform="translate(7 4) scale(${20 / 140})" stroke="#fff" stroke-width="20" fill="none"/></svg>`;
    const { input, stats } = await preprocessDigit(await sharp(Buffer.from(svg)).png().toBuffer());
    expect(stats.polarity).toBe('light-ink');
    expectMnistLike(input);
  });
});
