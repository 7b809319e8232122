/**
 * issue 16: a Discord button press as the core's {@link ButtonPress}.
 */
import { AttachmentBuilder, MessageFlags, type ButtonInteraction } from 'discord.js';
import type { ButtonPress, ChatContext } from '../../core/index.ts';
import { chatInfo } from './chat-info.ts';
import { componentsOf } from './components.ts';
import { IMAGE_NAME } from './interaction-context.ts';
import { literalText, MESSAGE_MAX, splitMessage } from './message-text.ts';

/** A press's context and whether the core answered it. */
export interface PressContext {
  readonly ctx: ChatContext;
  readonly answered: () => boolean;
}

/**
 * Translates a button press. `answer(text)` replies to the presser alone (ephemeral), or
 * acknowledges silently; `finish(note)` edits the message that carried the buttons through the
 * interaction's webhook (no channel permission needed): the note appended, the buttons removed.
 * Later replies (the next photo of `/review`) are follow-ups.
 */
export function pressContext(interaction: ButtonInteraction): PressContext {
  let answered = false;
  const message = interaction.message;
  const press: ButtonPress = {
    data: interaction.customId,
    async answer(text) {
      if (answered) return;
      answered = true;
      if (text === undefined) await interaction.deferUpdate();
      else
        await interaction.reply({
          content: text.slice(0, MESSAGE_MAX),
          flags: MessageFlags.Ephemeral,
        });
    },
    async finish(note) {
      if (!answered) {
        answered = true;
        await interaction.deferUpdate();
      }
      const content = `${message.content}\n\n${note}`.slice(0, MESSAGE_MAX);
      await interaction.webhook.editMessage(message.id, { content, components: [] });
    },
  };
  const send = async (content: string, extra: object = {}): Promise<void> => {
    if (!answered) {
      answered = true;
      await interaction.deferUpdate();
    }
    await interaction.followUp({ content, ...extra });
  };
  const { user } = interaction;
  const ctx: ChatContext = {
    platform: 'discord',
    literal: literalText,
    user: { id: user.id, name: user.globalName ?? user.username, languageCode: interaction.locale },
    chat: chatInfo(
      interaction.channelId,
      interaction.guild,
      interaction.channel,
      interaction.inGuild(),
    ),
    messageId: message.id,
    press,
    async reply(text, options) {
      const parts = splitMessage(text);
      for (const [i, part] of parts.entries()) {
        await send(part, i === parts.length - 1 ? componentsOf(options) : {});
      }
    },
    async replyImage(png, caption, options) {
      const file = new AttachmentBuilder(Buffer.from(png), { name: IMAGE_NAME });
      await send(caption.slice(0, MESSAGE_MAX), { files: [file], ...componentsOf(options) });
    },
  };
  return { ctx, answered: () => answered };
}
