/**
 * issue 16: the core's reply buttons as Discord message components. A button's `custom_id` is
 * the core's button data, so one `InteractionCreate` listener routes every press, also after a
 * restart (no collectors): see `press-context.ts`.
 */
import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';
import type { ReplyOptions } from '../../core/index.ts';

/** Discord's limits: 5 action rows of 5 buttons; `custom_id` up to 100 characters. */
const MAX_ROWS = 5;
const MAX_PER_ROW = 5;

/** The reply's buttons as action rows (long rows are wrapped at 5 buttons). */
export function componentsOf(options: ReplyOptions | undefined): {
  components?: ActionRowBuilder<ButtonBuilder>[];
} {
  const rows = options?.buttons;
  if (!rows || rows.length === 0) return {};
  const wrapped = rows.flatMap((row) => {
    const out = [];
    for (let i = 0; i < row.length; i += MAX_PER_ROW) out.push(row.slice(i, i + MAX_PER_ROW));
    return out;
  });
  return {
    components: wrapped.slice(0, MAX_ROWS).map((row) =>
      new ActionRowBuilder<ButtonBuilder>().addComponents(
        row.map((b, i) =>
          new ButtonBuilder()
            .setCustomId(b.data)
            .setLabel(b.text)
            .setStyle(
              i === 0 && row.length < MAX_PER_ROW ? ButtonStyle.Success : ButtonStyle.Secondary,
            ),
        ),
      ),
    ),
  };
}
