import Table from 'cli-table3';
import type { TableInput } from '../imaging/table.ts';

/**
 * A table as text for a terminal, with `cli-table3` (box-drawing borders, numeric columns
 * right-aligned as given, no colours): the title above, the footer rows after a rule, the
 * footnotes below. The same {@link TableInput} the chat renders as PNG (`src/imaging/table.ts`).
 */
export function formatTextTable(input: TableInput): string {
  const table = new Table({
    head: [...input.header],
    colAligns: input.header.map((_, i) => input.align?.[i] ?? 'left'),
    style: { head: [], border: [], compact: true },
  });
  for (const row of input.rows) table.push([...row]);
  const footer = input.footerRows ?? [];
  if (footer.length > 0) {
    // A rule inside the table, as wide as each column's longest cell.
    const all = [input.header, ...input.rows, ...footer];
    table.push(
      input.header.map((_, i) => '─'.repeat(Math.max(...all.map((r) => (r[i] ?? '').length)))),
    );
    for (const row of footer) table.push([...row]);
  }
  return [...(input.title ? [input.title] : []), table.toString(), ...(input.footnotes ?? [])].join(
    '\n',
  );
}

/** A size in decimal megabytes with one decimal, as the command line prints sizes: `21.7 MB`. */
export function formatMegabytesText(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
