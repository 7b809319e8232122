/**
 * Text in the SVG documents this folder rasterizes with sharp (overlay captions, table cells).
 */

/**
 * `s` safe as SVG text or attribute content: `& < > " '` as numeric character references, so
 * that a class name or a caption cannot break the markup (`<svg>` in a label stays text).
 * @example
 * escapeXml('cats & dogs <3'); // 'cats &#38; dogs &#60;3'
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
