/** A CSV cell value. */
export type CsvValue = string | number | boolean | Date | null | undefined;

/**
 * One RFC 4180 CSV line (with CRLF). Text that a spreadsheet would run as a formula (starting
 * with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`: exports hold names users chose.
 *
 * @example
 * toCsvLine(['a,b', 3, null]); // '"a,b",3,\r\n'
 */
export function toCsvLine(values: readonly CsvValue[]): string {
  return `${values.map(toCsvCell).join(',')}\r\n`;
}

function toCsvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'string') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
