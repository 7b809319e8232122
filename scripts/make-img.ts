/**
 * Generates the sample images in img/: `0.png` ... `9.png`, photo-like pictures of handwritten
 * digits under different conditions, and `abrakadabra.png`, a handwritten word that is not a
 * digit. Everything is drawn here: each digit is a handwriting-like stroke path (polylines and
 * Bezier curves) with seeded jitter, rendered by librsvg through sharp and composited onto
 * procedurally generated paper, board or canvas. No font glyphs for digits, no data set images.
 *
 *   npx tsx scripts/make-img.ts
 *
 * Also writes img/extra/8-sideways.jpg: the `8` scene stored sideways with EXIF orientation 6.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { preprocessDigit } from '../src/ml/preprocess/digit.ts';

const OUT = path.resolve('img');
const rng = seedrandom('cnn-classroom img v1');
const between = (a: number, b: number): number => a + (b - a) * rng();
const noise = (sd: number): number => (rng() + rng() + rng() - 1.5) * 2 * sd;

/** Digit strokes in a 100 x 140 box, y downwards, as a hand would draw them. */
const DIGITS: readonly string[] = [
  'M50 10 C20 12 8 50 12 85 C16 120 40 132 58 128 C82 122 92 90 88 55 C85 25 70 8 46 14',
  'M30 34 C40 26 50 18 58 8 C57 50 55 92 54 132',
  'M16 42 C18 16 48 4 70 14 C92 26 86 54 66 76 C48 96 30 112 14 128 C40 126 66 126 92 124',
  'M20 26 C36 4 80 8 78 36 C76 58 52 64 40 66 C70 66 92 84 86 106 C80 134 34 136 14 114',
  'M62 8 C46 36 28 64 12 92 C40 90 66 90 94 88 M72 44 C71 74 70 104 68 134',
  'M84 12 C66 13 48 13 30 15 C28 31 26 47 24 63 C44 50 80 54 86 86 C92 120 54 138 18 120',
  'M76 10 C40 26 16 64 18 100 C20 128 60 138 78 116 C92 96 80 70 56 70 C36 70 22 84 20 100',
  'M12 16 C38 15 62 15 88 14 C70 46 50 86 40 132 M32 74 C44 73 58 72 70 71',
  'M52 70 C22 62 18 16 50 12 C82 10 80 58 50 70 C16 82 14 130 50 130 C88 130 86 80 52 70',
  'M80 42 C78 8 28 8 24 40 C22 66 62 72 80 44 C81 76 76 108 70 134',
];

/** Random per-point offsets: no two renders are the same hand. */
function jitter(d: string, amount: number): string {
  return d.replace(/-?\d+(\.\d+)?/g, (m) => (Number(m) + noise(amount)).toFixed(1));
}

interface InkLayer {
  alpha: Float32Array;
  size: number;
}

/** Renders a path (in the 100x140 box) to an ink coverage map `size x size`, centred. */
async function drawInk(
  d: string,
  size: number,
  strokeWidth: number,
  slant: number,
  extraSvg = '',
): Promise<InkLayer> {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="-40 -20 180 180">` +
    `<g transform="skewX(${slant}) translate(${slant * -1.2} 0)">` +
    `<path d="${d}" fill="none" stroke="#000" stroke-width="${strokeWidth}" stroke-linecap="round" stroke-linejoin="round"/>` +
    `${extraSvg}</g></svg>`;
  const raw = await sharp(Buffer.from(svg))
    .blur(0.6)
    .ensureAlpha()
    .extractChannel(3)
    .raw()
    .toBuffer();
  return { alpha: Float32Array.from(raw, (v) => v / 255), size };
}

interface Surface {
  width: number;
  height: number;
  paper: readonly [number, number, number];
  ink: readonly [number, number, number];
  grid?: {
    period: number;
    colour: readonly [number, number, number];
    angle: number;
    strength: number;
  };
  /** Light falls from 1 to `1 - gradient` along a random direction. */
  gradient: number;
  noise: number;
  /** Pencil or chalk: ink coverage broken up by grain, 0..1. */
  grain?: number;
  /** A dark table visible along one side: share of the width. */
  table?: number;
}

function render(s: Surface, ink: InkLayer, x0: number, y0: number): Buffer {
  const { width: w, height: h } = s;
  const out = Buffer.alloc(w * h * 3);
  const gx = between(-1, 1);
  const gy = between(-1, 1);
  const norm = Math.hypot(gx, gy) || 1;
  const cos = Math.cos(s.grid?.angle ?? 0);
  const sin = Math.sin(s.grid?.angle ?? 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = ((x / w - 0.5) * gx + (y / h - 0.5) * gy) / norm + 0.5;
      const light = 1 - s.gradient * Math.min(1, Math.max(0, t));
      let c = [s.paper[0], s.paper[1], s.paper[2]];
      if (s.grid) {
        const u = x * cos + y * sin;
        const v = -x * sin + y * cos;
        const p = s.grid.period;
        const du = Math.abs((((u % p) + p) % p) - p / 2) - (p / 2 - 1);
        const dv = Math.abs((((v % p) + p) % p) - p / 2) - (p / 2 - 1);
        const g = Math.max(0, Math.min(1, Math.max(du, dv))) * s.grid.strength;
        c = c.map((ch, i) => ch + ((s.grid?.colour[i] ?? ch) - ch) * g);
      }
      const ix = x - x0;
      const iy = y - y0;
      if (ix >= 0 && iy >= 0 && ix < ink.size && iy < ink.size) {
        let a = ink.alpha[iy * ink.size + ix] ?? 0;
        if (s.grain) a *= 1 - s.grain * rng();
        c = c.map((ch, i) => ch + ((s.ink[i] ?? ch) - ch) * a);
      }
      if (s.table && x > w * (1 - s.table) + Math.sin(y / 90) * 6) c = [58, 44, 36];
      const n = noise(s.noise);
      const i = (y * w + x) * 3;
      for (let k = 0; k < 3; k++) out[i + k] = Math.max(0, Math.min(255, (c[k] ?? 0) * light + n));
    }
  }
  return out;
}

/** Palette PNG keeps photo-like noise under 200 KB. */
const savePng = (raw: Buffer, w: number, h: number, file: string) =>
  sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .png({ palette: true, colours: 128, dither: 0.6, effort: 8 })
    .toFile(path.join(OUT, file));

type Maker = (d: string) => Promise<void>;

const SCENES: readonly Maker[] = [
  // 0: blue ballpoint on squared paper, light falling off across the page.
  async (d) => {
    const ink = await drawInk(d, 300, 5, 8);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [242, 242, 238],
      ink: [30, 50, 150],
      grid: { period: 34, colour: [150, 175, 215], angle: 0.03, strength: 0.7 },
      gradient: 0.35,
      noise: 4,
    };
    await savePng(render(s, ink, 100, 170), s.width, s.height, '0.png');
  },
  // 1: black felt-tip marker on white printer paper.
  async (d) => {
    const ink = await drawInk(d, 340, 12, 4);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [236, 236, 232],
      ink: [20, 20, 24],
      gradient: 0.15,
      noise: 3,
    };
    await savePng(render(s, ink, 70, 140), s.width, s.height, '1.png');
  },
  // 2: soft pencil, grainy and grey, on cream paper with a table edge in view.
  async (d) => {
    const ink = await drawInk(d, 320, 6, 10);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [236, 230, 214],
      ink: [95, 95, 100],
      gradient: 0.3,
      noise: 5,
      grain: 0.35,
      table: 0.08,
    };
    await savePng(render(s, ink, 60, 160), s.width, s.height, '2.png');
  },
  // 3: chalk on a green blackboard.
  async (d) => {
    const ink = await drawInk(d, 340, 9, 6);
    const s: Surface = {
      width: 640,
      height: 480,
      paper: [44, 66, 54],
      ink: [225, 228, 220],
      gradient: 0.25,
      noise: 7,
      grain: 0.5,
    };
    await savePng(render(s, ink, 170, 60), s.width, s.height, '3.png');
  },
  // 4: a small digit far from the centre of a large photo.
  async (d) => {
    const ink = await drawInk(d, 80, 6, 12);
    const s: Surface = {
      width: 720,
      height: 960,
      paper: [228, 228, 222],
      ink: [25, 30, 45],
      gradient: 0.3,
      noise: 2.5,
    };
    await savePng(render(s, ink, 540, 720), s.width, s.height, '4.png');
  },
  // 5: red gel pen on squared paper, tilted grid.
  async (d) => {
    const ink = await drawInk(d, 300, 4, 14);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [244, 243, 240],
      ink: [180, 30, 40],
      grid: { period: 30, colour: [140, 160, 190], angle: -0.08, strength: 0.55 },
      gradient: 0.2,
      noise: 4,
    };
    await savePng(render(s, ink, 90, 180), s.width, s.height, '5.png');
  },
  // 6: white on black, as drawn in a phone paint app.
  async (d) => {
    const ink = await drawInk(d, 400, 14, 0);
    const s: Surface = {
      width: 400,
      height: 400,
      paper: [0, 0, 0],
      ink: [255, 255, 255],
      gradient: 0,
      noise: 0,
    };
    await savePng(render(s, ink, 0, 0), s.width, s.height, '6.png');
  },
  // 7: black digit on a transparent canvas (the "ink" is the opaque part).
  async (d) => {
    const ink = await drawInk(d, 400, 11, 5);
    const rgba = Buffer.alloc(400 * 400 * 4);
    for (let i = 0; i < 400 * 400; i++) rgba[i * 4 + 3] = Math.round((ink.alpha[i] ?? 0) * 255);
    await sharp(rgba, { raw: { width: 400, height: 400, channels: 4 } })
      .png({ effort: 8 })
      .toFile(path.join(OUT, '7.png'));
  },
  // 8: ballpoint in dim light, with a JPEG copy stored sideways (EXIF orientation 6) in extra/.
  async (d) => {
    const ink = await drawInk(d, 320, 5, 6);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [205, 200, 190],
      ink: [35, 35, 50],
      gradient: 0.45,
      noise: 9,
    };
    const raw = render(s, ink, 80, 150);
    await savePng(raw, s.width, s.height, '8.png');
    await sharp(raw, { raw: { width: s.width, height: s.height, channels: 3 } })
      .rotate(270)
      .jpeg({ quality: 82 })
      .withMetadata({ orientation: 6 })
      .toFile(path.join(OUT, 'extra', '8-sideways.jpg'));
  },
  // 9: blue ink, squared paper, strong shadow across the page.
  async (d) => {
    const ink = await drawInk(d, 280, 6, 9);
    const s: Surface = {
      width: 480,
      height: 640,
      paper: [238, 238, 235],
      ink: [40, 60, 140],
      grid: { period: 36, colour: [160, 180, 205], angle: 0.05, strength: 0.8 },
      gradient: 0.55,
      noise: 6,
    };
    await savePng(render(s, ink, 110, 200), s.width, s.height, '9.png');
  },
];

/** The word "abrakadabra" scribbled in marker, letter by letter off the baseline: not a digit. */
async function abrakadabra(): Promise<void> {
  const w = 640;
  const h = 480;
  let letters = '';
  let x = 40;
  for (const ch of 'abrakadabra') {
    const y = 250 + noise(6);
    letters += `<text x="${x.toFixed(0)}" y="${y.toFixed(0)}" font-family="serif" font-style="italic" font-size="${(70 + noise(6)).toFixed(0)}" transform="rotate(${noise(5).toFixed(1)} ${x} ${y})" fill="#1c2a7a">${ch}</text>`;
    x += ch === 'r' ? 38 : ch === 'k' || ch === 'd' || ch === 'b' ? 50 : 46;
  }
  const underline = `<path d="M40 285 C200 ${300 + noise(8)} 400 ${270 + noise(8)} ${x} 290" stroke="#1c2a7a" stroke-width="4" fill="none" stroke-linecap="round"/>`;
  const star = `<path d="M560 120 l10 30 l30 0 l-25 18 l10 30 l-25 -18 l-25 18 l10 -30 l-25 -18 l30 0 z" stroke="#1c2a7a" stroke-width="4" fill="none"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${letters}${underline}${star}</svg>`;
  const raw = await sharp(Buffer.from(svg))
    .blur(0.5)
    .ensureAlpha()
    .extractChannel(3)
    .raw()
    .toBuffer();
  const ink: InkLayer = { alpha: new Float32Array(w * h), size: w };
  // The layer is w x h, not square: widen to a square map for render().
  const square = new Float32Array(w * w);
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++) square[y * w + xx] = (raw[y * w + xx] ?? 0) / 255;
  ink.alpha = square;
  const s: Surface = {
    width: w,
    height: h,
    paper: [243, 242, 238],
    ink: [28, 42, 122],
    grid: { period: 32, colour: [160, 180, 210], angle: 0.02, strength: 0.6 },
    gradient: 0.25,
    noise: 4,
  };
  await savePng(render(s, ink, 0, 0), w, h, 'abrakadabra.png');
}

async function main(): Promise<void> {
  await mkdir(path.join(OUT, 'extra'), { recursive: true });
  for (let digit = 0; digit < 10; digit++) {
    const make = SCENES[digit];
    const d = DIGITS[digit];
    if (!make || !d) continue;
    await make(jitter(d, 2.5));
  }
  await abrakadabra();
  // A check, not a test: how the pipeline sees them.
  for (const name of [
    ...Array.from({ length: 10 }, (_, i) => `${i}.png`),
    'extra/8-sideways.jpg',
    'abrakadabra.png',
  ]) {
    const bytes = await sharp(path.join(OUT, name)).toBuffer();
    const file = await import('node:fs/promises').then((fs) => fs.readFile(path.join(OUT, name)));
    const r = await preprocessDigit(file);
    const s = r.stats;
    console.log(
      `${name.padEnd(22)} ${(file.length / 1024).toFixed(0).padStart(4)} KB  ${s.polarity.padEnd(9)} aspect ${s.bboxAspect.toFixed(2)} ` +
        `components ${s.components}/${s.digitComponents} stroke ${s.strokeRatio.toFixed(3)} fill ${s.boxFill.toFixed(2)} (${bytes.length > 0 ? 'ok' : ''})`,
    );
    await writeFile(path.join('/tmp', `img-${name.replace('/', '-')}-28.png`), r.preview);
  }
}

await main();
