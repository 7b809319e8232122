/**
 * Phone-photo scenes for the evaluation scripts (`photo-eval.ts`, `digit-eval.ts`): a digit's ink
 * composited onto paper, squared paper, a blackboard or a transparent canvas under uneven light,
 * sensor noise and JPEG, small in a big page, or stored sideways with an EXIF orientation.
 * Nothing here ships with the bot.
 */
import sharp from 'sharp';

export type Rng = () => number;
export const between = (rng: Rng, a: number, b: number): number => a + (b - a) * rng();
/** Roughly Gaussian noise, sum of three uniforms, standard deviation ~ `sd`. */
export const noise = (rng: Rng, sd: number): number => (rng() + rng() + rng() - 1.5) * 2 * sd;

export interface Scene {
  bytes: Uint8Array;
  ext: 'jpg' | 'png';
}

export interface Ink {
  /** Ink coverage 0..1 of the upscaled digit, `size x size`. */
  alpha: Float32Array;
  size: number;
}

/**
 * Upscales a 28x28 MNIST digit smoothly to `size` px and reshapes its stroke by where the soft
 * threshold sits on the smooth upscaled profile: `pen` < 0 gives a thinner stroke (ballpoint), > 0
 * a thicker one (marker); the result is crisp ink with anti-aliased edges.
 */
export async function inkFromDigit(digit: Uint8Array, size: number, pen: number): Promise<Ink> {
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

export interface PaperSpec {
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
export function renderScene(spec: PaperSpec, ink: Ink, x0: number, y0: number, rng: Rng): Buffer {
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

export const rawImage = (buf: Buffer, w: number, h: number, channels: 3 | 4 = 3) =>
  sharp(buf, { raw: { width: w, height: h, channels } });

/** Makes the ink of one digit, `size` px square; `pen` < 0 thinner, > 0 thicker than its source. */
export type InkMaker = (size: number, pen: number) => Promise<Ink>;

/** Phone-photo conditions: each composes one digit's ink into a scene and encodes it. */
export const CONDITIONS: Record<string, (makeInk: InkMaker, rng: Rng) => Promise<Scene>> = {
  /** Black ballpoint on plain white paper, centred, mild light falloff. */
  'dark-on-white': async (makeInk, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 380, 700));
    const ink = await makeInk(size, between(rng, -1, 0.3));
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
  'blue-squared': async (makeInk, rng) => {
    const [w, h] = [1500, 2000];
    const period = Math.round(between(rng, 45, 75));
    const size = Math.round(period * between(rng, 2, 4));
    const ink = await makeInk(size, between(rng, -0.7, -0.1));
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
  'small-offcentre': async (makeInk, rng) => {
    const [w, h] = [3000, 4000];
    const size = Math.round(between(rng, 150, 200));
    const ink = await makeInk(size, between(rng, -0.7, 0));
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
  'gradient-noise': async (makeInk, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 400, 700));
    const ink = await makeInk(size, between(rng, -0.8, 0));
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
  'exif-sideways': async (makeInk, rng) => {
    const [w, h] = [1200, 1600];
    const size = Math.round(between(rng, 400, 700));
    const ink = await makeInk(size, between(rng, -0.8, 0.3));
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
  'transparent-png': async (makeInk, rng) => {
    const side = 600;
    const size = Math.round(between(rng, 380, 560));
    const ink = await makeInk(size, between(rng, -0.5, 0.5));
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
  chalk: async (makeInk, rng) => {
    const [w, h] = [1600, 1200];
    const size = Math.round(between(rng, 400, 800));
    const ink = await makeInk(size, between(rng, -0.5, 0.5));
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
