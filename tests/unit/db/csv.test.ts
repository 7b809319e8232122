import { describe, expect, it } from 'vitest';
import { toCsvLine } from '../../../src/db/csv.ts';

describe('toCsvLine', () => {
  it('quotes cells with commas, quotes and line breaks', () => {
    expect(toCsvLine(['plain', 'a,b', 'say "hi"', 'two\nlines'])).toBe(
      'plain,"a,b","say ""hi""","two\nlines"\r\n',
    );
  });

  it('writes numbers, booleans, dates and empty cells', () => {
    expect(toCsvLine([-1.5, true, new Date('2025-01-02T03:04:05Z'), null, undefined])).toBe(
      '-1.5,true,2025-01-02T03:04:05.000Z,,\r\n',
    );
  });

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(toCsvLine(['=1+1', '@SUM(A1)', '+x', '-y'])).toBe("'=1+1,'@SUM(A1),'+x,'-y\r\n");
  });
});
