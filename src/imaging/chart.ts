import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { inputToDisplayBytes, type InputRange } from './input-pixels.ts';

/** What {@link renderProbabilityChart} draws. */
export interface ProbabilityChartInput {
  /** Softmax probabilities, one per class, in [0, 1]. */
  readonly probabilities: ArrayLike<number>;
  readonly classNames: readonly string[];
  /** Index of the predicted class, highlighted. */
  readonly predicted: number;
  /** Index of the true class when known (drawn green, the prediction red if it differs). */
  readonly trueClass?: number;
  /** The model's input image, grayscale `[height, width]` in [0, 1] or RGB `[height, width, 3]`. */
  readonly input?: {
    readonly data: Float32Array;
    readonly width: number;
    readonly height: number;
    readonly channels: 1 | 3;
    /** How `data` relates to the picture ([0, 1] unless 'signed' or 'caffe'); undone for display. */
    readonly range?: InputRange;
  };
  readonly title?: string;
  readonly xTitle?: string;
  readonly yTitle?: string;
}

const MAX_BARS = 20;

/**
 * Renders the lab's probability bar chart (classes on x, probability 0..1 on y, the predicted
 * class highlighted) with Vega-Lite, and when given the preprocessed input, that image enlarged
 * beside it (nearest-neighbour, so its pixels stay visible). With more than 20 classes only the
 * 20 most probable are drawn.
 *
 * @returns PNG bytes, about 640x300 pixels.
 */
export async function renderProbabilityChart(inp: ProbabilityChartInput): Promise<Buffer> {
  const rows = Array.from(inp.classNames, (name, i) => ({
    i,
    name,
    p: inp.probabilities[i] ?? 0,
    role:
      i === inp.predicted
        ? inp.trueClass !== undefined && inp.trueClass !== i
          ? 'wrong'
          : 'predicted'
        : i === inp.trueClass
          ? 'true'
          : 'other',
  }));
  const shown =
    rows.length > MAX_BARS ? [...rows].sort((a, b) => b.p - a.p).slice(0, MAX_BARS) : rows;
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 220,
    background: 'white',
    ...(inp.title ? { title: inp.title } : {}),
    data: { values: shown },
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'name',
        type: 'nominal',
        sort: shown.map((r) => r.name),
        title: inp.xTitle ?? 'class',
        axis: { labelAngle: shown.some((r) => r.name.length > 2) ? -40 : 0, labelLimit: 90 },
      },
      y: {
        field: 'p',
        type: 'quantitative',
        scale: { domain: [0, 1] },
        title: inp.yTitle ?? 'probability',
      },
      color: {
        field: 'role',
        type: 'nominal',
        scale: {
          domain: ['other', 'predicted', 'true', 'wrong'],
          range: ['#87ceeb', '#1f4fd1', '#2ca02c', '#d62728'],
        },
        legend: null,
      },
      tooltip: [{ field: 'p', type: 'quantitative', format: '.3f' }],
    },
  };
  const chart = await renderVegaLite(spec);
  if (!inp.input) return chart;

  const { width, height, channels } = inp.input;
  const bytes = inputToDisplayBytes(inp.input);
  const meta = await sharp(chart).metadata();
  const side = Math.round((meta.height ?? 440) * 0.8);
  const thumb = await sharp(bytes, { raw: { width, height, channels } })
    .resize(side, side, { kernel: 'nearest', fit: 'contain', background: '#ffffff' })
    .extend({ top: 2, bottom: 2, left: 2, right: 2, background: '#888888' })
    .png()
    .toBuffer();
  const pad = 20;
  const w = (meta.width ?? 900) + side + 4 + pad * 2;
  const h = meta.height ?? 440;
  return sharp({ create: { width: w, height: h, channels: 3, background: '#ffffff' } })
    .composite([
      { input: thumb, left: pad, top: Math.round((h - side - 4) / 2) },
      { input: chart, left: side + 4 + pad * 2, top: 0 },
    ])
    .png()
    .toBuffer();
}

/**
 * Renders a Vega-Lite spec headlessly (Vega's SVG renderer, no canvas or browser) to a PNG at
 * twice the spec's pixel size, on white.
 * @returns PNG bytes.
 */
export async function renderVegaLite(spec: vl.TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG(2);
    return await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png().toBuffer();
  } finally {
    view.finalize();
  }
}
