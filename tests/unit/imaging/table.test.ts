import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isNumericCell, paginateTable, renderTable } from '../../../src/imaging/table.ts';

const isPng = (b: Uint8Array): boolean =>
  [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((v, i) => b[i] === v);

describe('isNumericCell', () => {
  it.each([
    ['44,426', true],
    ['44\u00a0426', true],
    ['99.10%', true],
    ['99,10\u00a0%', true],
    ['0.28 M', true],
    ['42.3M', true],
    ['42,3\u00a0млн', true],
    ['282\u00a0тыс.', true],
    ['<0.1%', true],
    ['lenet-mnist', false],
    ['24×24×6', false],
    ['Conv2D', false],
    ['', false],
  ])('%j is numeric: %s', (cell, numeric) => {
    expect(isNumericCell(cell)).toBe(numeric);
  });
});

describe('renderTable', () => {
  it('renders a PNG that grows with its content, Cyrillic and markup characters included', async () => {
    const small = await renderTable({ header: ['a', 'b'], rows: [['1', '2']] });
    const large = await renderTable({
      title: 'Сравнение <моделей> & "прочее"',
      header: ['модель', 'параметры'],
      rows: Array.from({ length: 12 }, (_, i) => [
        `a-model-with-a-long-identifier-${i}`,
        String(i),
      ]),
      footerRows: [['всего', '66 000']],
      footnotes: ['A footnote long enough to be wrapped over several lines. '.repeat(4)],
    });
    expect(isPng(small) && isPng(large)).toBe(true);
    const [s, l] = await Promise.all([sharp(small).metadata(), sharp(large).metadata()]);
    expect(l.height).toBeGreaterThan(3 * (s.height ?? 0));
    expect(l.width).toBeGreaterThan(s.width ?? 0);
  });

  it('right-aligns a numeric column unless told otherwise', async () => {
    const rows = [['1'], ['1,000,000']];
    const auto = await renderTable({ header: ['n'], rows });
    const right = await renderTable({ header: ['n'], rows, align: ['right'] });
    const left = await renderTable({ header: ['n'], rows, align: ['left'] });
    expect(Buffer.compare(auto, right)).toBe(0);
    expect(Buffer.compare(auto, left)).not.toBe(0);
  });

  it('keeps width plus height within Telegram’s 10,000 pixels for a long table', async () => {
    const png = await renderTable({
      header: ['layer', 'MACs'],
      rows: Array.from({ length: 300 }, (_, i) => [`layer_${i}`, String(i)]),
    });
    const { width = 0, height = 0 } = await sharp(png).metadata();
    expect(width + height).toBeLessThanOrEqual(10_000);
  });

  it('refuses a row with more cells than the header', async () => {
    await expect(renderTable({ header: ['a'], rows: [['1', '2']] })).rejects.toThrow(/2 cells/);
  });
});

describe('paginateTable', () => {
  it('splits 100 rows into 3 even pages, the footer and footnotes on the last', () => {
    const rows = Array.from({ length: 100 }, (_, i) => [String(i)]);
    const pages = paginateTable(
      { title: 'T', header: ['n'], rows, footerRows: [['100']], footnotes: ['note'] },
      40,
    );
    expect(pages.map((p) => p.rows.length)).toEqual([34, 34, 32]);
    expect(pages.map((p) => p.title)).toEqual(['T (1/3)', 'T (2/3)', 'T (3/3)']);
    expect(pages.map((p) => p.footerRows?.length ?? 0)).toEqual([0, 0, 1]);
    expect(pages[2]?.footnotes).toEqual(['note']);
    expect(pages.flatMap((p) => p.rows)).toEqual(rows);
  });

  it('leaves a short table whole', () => {
    const table = { header: ['n'], rows: [['1']] };
    expect(paginateTable(table, 40)).toEqual([table]);
  });
});
