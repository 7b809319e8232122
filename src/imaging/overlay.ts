/**
 * Drawing explanations: a heat map coloured and laid over the photo, beside the photo itself,
 * with a colour bar and a caption; and a grid of several images with their maps. Pure
 * rendering: the maps come from `src/explain/`.
 */
import sharp from 'sharp';
import { applyColormap, colormapTable, type ColormapName } from './colormap.ts';
import { escapeXml } from './svg.ts';

/** An 8-bit RGB image, interleaved, row-major. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** A map over an image: `height x width` values in [0, 1], row-major. */
export interface HeatMap {
  readonly data: ArrayLike<number>;
  readonly width: number;
  readonly height: number;
}

/** What {@link renderOverlay} draws. */
export interface OverlayInput {
  readonly image: RgbImage;
  /** Values in [0, 1], any size: resized to the displayed photo. */
  readonly map: HeatMap;
  readonly colormap?: ColormapName;
  /** Opacity of the heat over the photo, 0..1 (default 0.5). */
  readonly alpha?: number;
  /** Lines written above the pictures (class, confidence, method, layer). */
  readonly caption?: readonly string[];
  /** Words at the ends of the colour bar (default `low`, `high`). */
  readonly labels?: { readonly low: string; readonly high: string };
  /**
   * Longest side of each picture, pixels (default 448): small images (a 32x32 CIFAR image) are
   * enlarged smoothly, large photos reduced.
   */
  readonly size?: number;
}

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const PAD = 12;
const LINE = 22;
const BAR_WIDTH = 18;

interface Raw {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** The image scaled so its longest side is `size` (Mitchell filter up, Lanczos down). */
async function fit(image: RgbImage, size: number): Promise<Raw> {
  const scale = size / Math.max(image.width, image.height);
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const data = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .resize(width, height, { fit: 'fill', kernel: scale > 1 ? 'mitchell' : 'lanczos3' })
    .raw()
    .toBuffer();
  return { data, width, height };
}

/** Bilinear resize with half-pixel centres (for display). */
function resize(map: HeatMap, width: number, height: number): ArrayLike<number> {
  if (map.width === width && map.height === height) return map.data;
  const out = new Float32Array(width * height);
  const at = (x: number, y: number): number => map.data[y * map.width + x] ?? 0;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(map.height - 1, Math.max(0, ((y + 0.5) * map.height) / height - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(map.height - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(map.width - 1, Math.max(0, ((x + 0.5) * map.width) / width - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(map.width - 1, x0 + 1);
      const wx = fx - x0;
      out[y * width + x] =
        (1 - wy) * ((1 - wx) * at(x0, y0) + wx * at(x1, y0)) +
        wy * ((1 - wx) * at(x0, y1) + wx * at(x1, y1));
    }
  }
  return out;
}

/** The map coloured at `width x height`. */
function colour(map: HeatMap, width: number, height: number, name: ColormapName): Raw {
  return { data: applyColormap(resize(map, width, height), name), width, height };
}

/** alpha * heat + (1 - alpha) * photo. */
function blend(photo: Raw, heat: Raw, alpha: number): Raw {
  const data = new Uint8Array(photo.data.length);
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.round(alpha * (heat.data[i] ?? 0) + (1 - alpha) * (photo.data[i] ?? 0));
  }
  return { ...photo, data };
}

/** A vertical colour bar, high at the top. */
function colourBar(height: number, name: ColormapName): Raw {
  const lut = colormapTable(name);
  const data = new Uint8Array(BAR_WIDTH * height * 3);
  for (let y = 0; y < height; y++) {
    const k = Math.round((1 - y / Math.max(1, height - 1)) * 255) * 3;
    for (let x = 0; x < BAR_WIDTH; x++) data.set(lut.subarray(k, k + 3), (y * BAR_WIDTH + x) * 3);
  }
  return { data, width: BAR_WIDTH, height };
}

function text(
  x: number,
  y: number,
  s: string,
  opts: { size?: number; weight?: string; anchor?: string } = {},
): string {
  return `<text x="${x}" y="${y}" font-family="${FONT}" font-size="${opts.size ?? 15}" font-weight="${opts.weight ?? 'normal'}" text-anchor="${opts.anchor ?? 'start'}" fill="#111">${escapeXml(s)}</text>`;
}

const rawLayer = (r: Raw, left: number, top: number): sharp.OverlayOptions => ({
  input: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  raw: { width: r.width, height: r.height, channels: 3 },
  left,
  top,
});

/**
 * Renders the photo and the photo with the heat map over it, side by side, with a colour bar
 * and the caption above.
 * @returns PNG bytes, about 1000 x 500 pixels at the default size.
 * @example
 * const png = await renderOverlay({ image: e.image, map: e.map, caption: ['tusker 84%', 'Grad-CAM, conv_pw_13_relu'] });
 */
export async function renderOverlay(inp: OverlayInput): Promise<Buffer> {
  const name = inp.colormap ?? 'turbo';
  const alpha = Math.min(1, Math.max(0, inp.alpha ?? 0.5));
  const photo = await fit(inp.image, inp.size ?? 448);
  const over = blend(photo, colour(inp.map, photo.width, photo.height, name), alpha);
  const caption = inp.caption ?? [];
  const top = PAD + caption.length * LINE + (caption.length > 0 ? 6 : 0);
  const labelWidth = 56;
  const width = PAD + photo.width + PAD + photo.width + PAD + BAR_WIDTH + 6 + labelWidth;
  const height = top + photo.height + PAD;
  const barX = PAD + 2 * photo.width + 2 * PAD;
  const labels = inp.labels ?? { low: 'low', high: 'high' };
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${caption
    .map((line, i) =>
      text(PAD, PAD + (i + 1) * LINE - 6, line, i === 0 ? { weight: 'bold', size: 17 } : {}),
    )
    .join('')}${text(barX + BAR_WIDTH + 6, top + 12, labels.high, { size: 13 })}${text(
    barX + BAR_WIDTH + 6,
    top + photo.height - 2,
    labels.low,
    { size: 13 },
  )}</svg>`;
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([
      rawLayer(photo, PAD, top),
      rawLayer(over, 2 * PAD + photo.width, top),
      rawLayer(colourBar(photo.height, name), barX, top),
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}

/** One column of {@link renderMapGrid}. */
export interface GridCell {
  readonly image: RgbImage;
  readonly map: HeatMap;
  /** Lines written above the image. */
  readonly title: readonly string[];
}

/**
 * Renders images in a row with their maps (coloured, alone) below them, and a colour bar:
 * the saliency course task's figure.
 * @param cellSize side of each picture, pixels (default 160; images are enlarged smoothly).
 */
export async function renderMapGrid(
  cells: readonly GridCell[],
  options: {
    colormap?: ColormapName;
    cellSize?: number;
    title?: string;
    labels?: { low: string; high: string };
  } = {},
): Promise<Buffer> {
  const name = options.colormap ?? 'turbo';
  const size = options.cellSize ?? 160;
  const titleLines = Math.max(0, ...cells.map((c) => c.title.length));
  const head = PAD + (options.title ? LINE + 4 : 0);
  const rowTop = head + titleLines * 18 + 4;
  const barX = PAD + cells.length * (size + PAD);
  const width = barX + BAR_WIDTH + 6 + 56;
  const height = rowTop + 2 * size + PAD + PAD;
  const layers: sharp.OverlayOptions[] = [];
  let svg = options.title
    ? text(PAD, PAD + LINE - 6, options.title, { weight: 'bold', size: 17 })
    : '';
  for (const [i, cell] of cells.entries()) {
    const x = PAD + i * (size + PAD);
    const photo = await fit(cell.image, size);
    const dx = x + Math.floor((size - photo.width) / 2);
    const dy = Math.floor((size - photo.height) / 2);
    layers.push(rawLayer(photo, dx, rowTop + dy));
    layers.push(
      rawLayer(colour(cell.map, photo.width, photo.height, name), dx, rowTop + size + PAD + dy),
    );
    cell.title.forEach((line, k) => {
      svg += text(x + size / 2, head + (k + 1) * 18 - 4, line, { size: 13, anchor: 'middle' });
    });
  }
  const barHeight = 2 * size + PAD;
  layers.push(rawLayer(colourBar(barHeight, name), barX, rowTop));
  const labels = options.labels ?? { low: 'low', high: 'high' };
  svg += text(barX + BAR_WIDTH + 6, rowTop + 12, labels.high, { size: 13 });
  svg += text(barX + BAR_WIDTH + 6, rowTop + barHeight - 2, labels.low, { size: 13 });
  layers.push({
    input: Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg}</svg>`,
    ),
    left: 0,
    top: 0,
  });
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toBuffer();
}
