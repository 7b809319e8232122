import { escapeMarkdown } from 'discord.js';

/** Discord's limit on a message's content, in characters. */
export const MESSAGE_MAX = 2000;

/**
 * Splits a reply into messages within Discord's length limit, at line breaks where it can
 * (Telegram allows 4096 characters, so the core does not keep to 2000 itself).
 *
 * @example
 * splitMessage('a'.repeat(2500)).map((m) => m.length); // [2000, 500]
 */
export function splitMessage(text: string, max = MESSAGE_MAX): string[] {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const cut = rest.lastIndexOf('\n', max);
    const at = cut > 0 ? cut : max;
    parts.push(rest.slice(0, at));
    rest = rest.slice(cut > 0 ? at + 1 : at);
  }
  if (rest.trim() !== '') parts.push(rest);
  return parts;
}

/**
 * User-given text (a display name) escaped so that Discord shows it literally: Discord renders
 * Markdown in every message, and the core's replies are plain text (`ChatContext.literal`).
 * Uses discord.js's `escapeMarkdown`, with masked links, headings and lists escaped too.
 *
 * @example
 * literalText('*_[x](y)'); // '\\*\\_\\[x](y)' (shown as *_[x](y))
 */
export function literalText(text: string): string {
  return escapeMarkdown(text, {
    maskedLink: true,
    heading: true,
    bulletedList: true,
    numberedList: true,
  });
}
