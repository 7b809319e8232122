/**
 * issue 16: a confusion matrix as a PNG, with an example photo in each cell that holds mistakes
 * (what the model confused is easier to believe when you see the handwriting). The grid is SVG
 * rasterized by sharp; the thumbnails are composited over their cells.
 */
import sharp from 'sharp';
import { escapeXml } from './svg.ts';

/** What {@link renderConfusionMatrix} draws. */
export interface ConfusionInput {
  /** `counts[trueClass][predictedClass]`, a square matrix of non-negative integers. */
  readonly counts: readonly (readonly number[])[];
  readonly classNames: readonly string[];
  /**
   * One image (any format sharp reads) per off-diagonal cell, keyed `"<true>,<predicted>"`;
   * cells without one show only their count.
   */
  readonly examples?: ReadonlyMap<string, Uint8Array>;
  readonly title?: string;
  /** Axis titles (default "true label", "prediction"). */
  readonly rowTitle?: string;
  readonly columnTitle?: string;
}

const CELL = 56;
const THUMB = 34;
const LEFT = 64;
const TOP = 64;
const FONT = 'DejaVu Sans, Liberation Sans, sans-serif';

/**
 * Renders the matrix: diagonal cells green, mistakes red, each shaded by its share of the row;
 * a mistake cell shows its count in a corner and an example below it.
 *
 * @returns PNG bytes, `(LEFT + n·56 + 16) × (TOP + n·56 + 16)` pixels for `n` classes.
 * @throws {Error} when `counts` is not `n × n` for `n = classNames.length`.
 */
export async function renderConfusionMatrix(input: ConfusionInput): Promise<Uint8Array> {
  const n = input.classNames.length;
  if (input.counts.length !== n || input.counts.some((r) => r.length !== n)) {
    throw new Error(`confusion matrix must be ${n}x${n}`);
  }
  const width = LEFT + n * CELL + 16;
  const height = TOP + n * CELL + 16;
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="20" font-family="${FONT}" font-size="14" font-weight="bold">${escapeXml(input.title ?? '')}</text>`,
    `<text x="${LEFT + (n * CELL) / 2}" y="${TOP - 30}" font-family="${FONT}" font-size="12" text-anchor="middle">${escapeXml(input.columnTitle ?? 'prediction')}</text>`,
    `<text x="14" y="${TOP + (n * CELL) / 2}" font-family="${FONT}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${TOP + (n * CELL) / 2})">${escapeXml(input.rowTitle ?? 'true label')}</text>`,
  ];
  const thumbs: sharp.OverlayOptions[] = [];
  for (let i = 0; i < n; i++) {
    const name = escapeXml(input.classNames[i] ?? String(i));
    parts.push(
      `<text x="${LEFT + i * CELL + CELL / 2}" y="${TOP - 8}" font-family="${FONT}" font-size="13" text-anchor="middle">${name}</text>`,
      `<text x="${LEFT - 10}" y="${TOP + i * CELL + CELL / 2 + 5}" font-family="${FONT}" font-size="13" text-anchor="end">${name}</text>`,
    );
    const row = input.counts[i]!;
    const rowTotal = row.reduce((a, b) => a + b, 0);
    for (let j = 0; j < n; j++) {
      const count = row[j]!;
      const x = LEFT + j * CELL;
      const y = TOP + i * CELL;
      const share = rowTotal === 0 ? 0 : count / rowTotal;
      const fill =
        count === 0
          ? '#f6f6f6'
          : i === j
            ? `rgba(46, 160, 67, ${0.15 + 0.75 * share})`
            : `rgba(215, 58, 73, ${0.25 + 0.65 * share})`;
      parts.push(
        `<rect x="${x}" y="${y}" width="${CELL}" height="${CELL}" fill="${fill}" stroke="#d0d0d0"/>`,
      );
      const example = i === j ? undefined : input.examples?.get(`${i},${j}`);
      if (count > 0 && example) {
        parts.push(
          `<text x="${x + CELL - 4}" y="${y + 13}" font-family="${FONT}" font-size="11" font-weight="bold" text-anchor="end">${count}</text>`,
        );
        const thumb = await sharp(example)
          .rotate()
          .resize(THUMB, THUMB, { fit: 'contain', background: '#ffffff' })
          .flatten({ background: '#ffffff' })
          .png()
          .toBuffer();
        thumbs.push({ input: thumb, left: x + 4, top: y + CELL - THUMB - 4 });
      } else if (count > 0) {
        parts.push(
          `<text x="${x + CELL / 2}" y="${y + CELL / 2 + 5}" font-family="${FONT}" font-size="14" text-anchor="middle">${count}</text>`,
        );
      }
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
  const png = await sharp(Buffer.from(svg)).composite(thumbs).png().toBuffer();
  return new Uint8Array(png);
}
