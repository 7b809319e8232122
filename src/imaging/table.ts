/**
 * A table as a PNG, for chats (a layer table, a model comparison): the table is written as SVG
 * text in a monospace font and rasterized by sharp (librsvg). A monospace font makes every
 * character the same width, so columns can be laid out exactly without measuring glyphs.
 * (Command-line tables are text: `cli-table3`, in `src/cli/`.)
 */
import sharp from 'sharp';
import { escapeXml } from './svg.ts';

/** What {@link renderTable} draws. */
export interface TableInput {
  /** A line above the table, bold. */
  readonly title?: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Rows drawn bold below a rule after {@link rows} (totals). */
  readonly footerRows?: readonly (readonly string[])[];
  /** Lines of small print below the table; wrapped to the table's width. */
  readonly footnotes?: readonly string[];
  /**
   * Alignment per column; default: right for a column whose cells are all numbers (with a unit
   * or `%` allowed, `—` and empty cells ignored), left otherwise.
   */
  readonly align?: readonly ('left' | 'right')[];
}

const FONT = 'DejaVu Sans Mono, Liberation Mono, monospace';
const FONT_SIZE = 14;
/** DejaVu Sans Mono's advance width: 1233/2048 em. */
const CHAR_WIDTH = (FONT_SIZE * 1233) / 2048;
const NOTE_SIZE = 12;
const ROW = 22;
const PAD = 14;
const GAP = 2; // characters between columns
/** Telegram refuses a photo whose width plus height exceed 10,000 pixels. */
const MAX_SIDES = 9_000;

const NUMBER = /^[<>≈~]?[-+−]?\d[\d\s\u00a0\u202f.,]*(?:\s?(?:%|[A-Za-zА-Яа-яµ/.]{1,8}))?$/;

/** True when a cell reads as a number (`44,426`, `0.28 M`, `99,10 %`, `1.2 ms`). */
export function isNumericCell(cell: string): boolean {
  return NUMBER.test(cell.trim());
}

function defaultAlign(column: readonly string[]): 'left' | 'right' {
  const cells = column.map((c) => c.trim()).filter((c) => c !== '' && c !== '—' && c !== '-');
  return cells.length > 0 && cells.every(isNumericCell) ? 'right' : 'left';
}

/** Splits `text` into lines of at most `width` characters, at spaces where possible. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * Renders a table to PNG: an optional bold title, a header on grey, rows striped, numeric
 * columns right-aligned, optional bold footer rows (totals) and footnotes. Drawn at twice the
 * layout's pixel size for sharp text, or less for very large tables, so that width plus height
 * stay within Telegram's limit for photos.
 *
 * @returns PNG bytes, white background.
 * @throws {Error} when a row has more cells than the header.
 * @example
 * const png = await renderTable({
 *   title: 'lenet-mnist',
 *   header: ['layer', 'parameters'],
 *   rows: [['conv1', '156'], ['fc1', '30,840']],
 *   footerRows: [['total', '44,426']],
 * });
 */
export async function renderTable(input: TableInput): Promise<Buffer> {
  const { header } = input;
  const footer = input.footerRows ?? [];
  const all = [...input.rows, ...footer];
  for (const r of all) {
    if (r.length > header.length) {
      throw new Error(`a row has ${r.length} cells, the header ${header.length}: ${r.join(' | ')}`);
    }
  }
  const columns = header.map((h, i) => [h, ...all.map((r) => r[i] ?? '')]);
  const widths = columns.map((c) => Math.max(...c.map((s) => [...s].length)));
  const align = header.map(
    (_, i) => input.align?.[i] ?? defaultAlign(input.rows.map((r) => r[i] ?? '')),
  );
  const tableChars = widths.reduce((n, w) => n + w, 0) + GAP * (widths.length - 1);
  // The title is 16 px against the table's 14.
  const title = input.title ? Math.ceil(([...input.title].length * 16) / FONT_SIZE) : 0;
  const textChars = Math.max(tableChars, title, 40);
  // Footnotes are 12 px: more characters fit in the same width.
  const noteChars = Math.floor((textChars * FONT_SIZE) / NOTE_SIZE);
  const notes = (input.footnotes ?? []).flatMap((n) => wrap(n, noteChars));
  const width = Math.ceil(textChars * CHAR_WIDTH + 2 * PAD);

  const parts: string[] = [];
  let y = PAD;
  const text = (x: number, baseline: number, s: string, anchor: string, extra = ''): void => {
    parts.push(
      `<text x="${x.toFixed(1)}" y="${baseline}" text-anchor="${anchor}"${extra}>${escapeXml(s)}</text>`,
    );
  };
  if (input.title) {
    text(PAD, y + 16, input.title, 'start', ' font-weight="bold" font-size="16"');
    y += ROW + 6;
  }
  const drawRow = (cells: readonly string[], extra: string): void => {
    let x = PAD;
    for (const [i, w] of widths.entries()) {
      const cell = cells[i] ?? '';
      if (align[i] === 'right') text(x + w * CHAR_WIDTH, y + 15, cell, 'end', extra);
      else text(x, y + 15, cell, 'start', extra);
      x += (w + GAP) * CHAR_WIDTH;
    }
    y += ROW;
  };
  const tableWidth = tableChars * CHAR_WIDTH + PAD;
  parts.push(
    `<rect x="${PAD / 2}" y="${y - 2}" width="${tableWidth.toFixed(1)}" height="${ROW}" fill="#e4e8ee"/>`,
  );
  drawRow(header, ' font-weight="bold"');
  for (const [i, r] of input.rows.entries()) {
    if (i % 2 === 1) {
      parts.push(
        `<rect x="${PAD / 2}" y="${y - 2}" width="${tableWidth.toFixed(1)}" height="${ROW}" fill="#f5f6f8"/>`,
      );
    }
    drawRow(r, '');
  }
  if (footer.length > 0) {
    parts.push(
      `<line x1="${PAD / 2}" x2="${(PAD / 2 + tableWidth).toFixed(1)}" y1="${y - 2}" y2="${y - 2}" stroke="#555" stroke-width="1"/>`,
    );
    for (const r of footer) drawRow(r, ' font-weight="bold"');
  }
  if (notes.length > 0) y += 6;
  for (const n of notes) {
    text(PAD, y + 14, n, 'start', ` font-size="${NOTE_SIZE}" fill="#444"`);
    y += 18;
  }
  const height = y + PAD;
  const scale = Math.min(2, MAX_SIDES / (width + height));
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}"><rect width="100%" height="100%" fill="#ffffff"/>` +
    `<g xml:space="preserve" font-family="${FONT}" font-size="${FONT_SIZE}" fill="#111">${parts.join('')}</g></svg>`;
  return sharp(Buffer.from(svg), { density: 72 * scale })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
}

/**
 * Splits a long table into pages of at most `maxRows` rows, as even as possible, so that each
 * page stays readable on a phone (a photo is shown about 1280 pixels high): the header on every
 * page, `(page/pages)` after the title, the footer rows and footnotes on the last page only.
 *
 * @example
 * const pngs = await Promise.all(paginateTable(table, 40).map(renderTable));
 */
export function paginateTable(input: TableInput, maxRows = 40): TableInput[] {
  const pages = Math.max(1, Math.ceil(input.rows.length / Math.max(1, maxRows)));
  if (pages === 1) return [input];
  const size = Math.ceil(input.rows.length / pages);
  const { footerRows, footnotes, ...common } = input;
  return Array.from({ length: pages }, (_, i) => ({
    ...common,
    ...(input.title === undefined ? {} : { title: `${input.title} (${i + 1}/${pages})` }),
    rows: input.rows.slice(i * size, (i + 1) * size),
    ...(i === pages - 1
      ? {
          ...(footerRows === undefined ? {} : { footerRows }),
          ...(footnotes === undefined ? {} : { footnotes }),
        }
      : {}),
  }));
}
