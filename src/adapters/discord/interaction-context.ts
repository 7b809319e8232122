import { AttachmentBuilder, type ChatInputCommandInteraction, type Message } from 'discord.js';
import type { ChatContext, Command, ImageRef, ReplyOptions } from '../../core/index.ts';
import { componentsOf } from './components.ts';
import { attachmentImage } from './attachment-image.ts';
import { chatInfo } from './chat-info.ts';
import { literalText, MESSAGE_MAX, splitMessage } from './message-text.ts';

/** The file name of images the bot posts. */
export const IMAGE_NAME = 'chart.png';

/** A slash command's context for the core, and whether the core has answered through it. */
export interface InteractionContext {
  readonly ctx: ChatContext;
  /** True once a reply has replaced the deferred "thinking..." message. */
  readonly answered: () => boolean;
}

/**
 * Translates a deferred slash command into the core's context. The declared string options'
 * values, in the command's order, become `args` (`/predict image: model:lenet-mnist` ->
 * `lenet-mnist`); the first image option becomes `image`; the client's locale (`ru`, `en-US`)
 * is the user's language. The first reply edits the deferred response, later ones are follow-ups.
 *
 * @param command the core's command of this name, if it still has one (a stale registration
 *   may name a command the core no longer serves).
 */
export function interactionContext(
  interaction: ChatInputCommandInteraction,
  command: Command | undefined,
  maxDownloadBytes?: number,
): InteractionContext {
  const options = command?.options ?? [];
  const args = options
    .filter((o) => o.type === 'string')
    .map((o) => interaction.options.getString(o.name)?.trim() ?? '')
    .filter((v) => v !== '')
    .join(' ');
  const imageOption = options.find((o) => o.type === 'image');
  const attachment = imageOption ? interaction.options.getAttachment(imageOption.name) : null;
  const image: ImageRef | undefined = attachment
    ? attachmentImage(attachment, maxDownloadBytes)
    : undefined;
  const { user } = interaction;

  let answered = false;
  async function send(
    content: string,
    files?: AttachmentBuilder[],
    options?: ReplyOptions,
  ): Promise<Message> {
    const payload = { content, ...(files ? { files } : {}), ...componentsOf(options) };
    if (!answered) {
      answered = true;
      return interaction.editReply(payload);
    }
    return interaction.followUp(payload);
  }

  const ctx: ChatContext = {
    platform: 'discord',
    literal: literalText,
    user: {
      id: user.id,
      name: user.globalName ?? user.username,
      languageCode: interaction.locale,
    },
    chat: chatInfo(
      interaction.channelId,
      interaction.guild,
      interaction.channel,
      interaction.inGuild(),
    ),
    messageId: interaction.id,
    command: { name: interaction.commandName, args },
    ...(image ? { image } : {}),
    async reply(text, options) {
      const parts = splitMessage(text);
      for (const [i, part] of parts.entries()) {
        await send(part, undefined, i === parts.length - 1 ? options : undefined);
      }
    },
    async replyEditable(text) {
      // Edited later by channel and message id with the bot token: the interaction's own
      // token expires after 15 minutes, long before a training job ends.
      const m = await send(text.slice(0, MESSAGE_MAX));
      return { chatId: m.channelId, messageId: m.id };
    },
    async replyImage(png, caption, options) {
      const file = new AttachmentBuilder(Buffer.from(png), { name: IMAGE_NAME });
      await send(caption.slice(0, MESSAGE_MAX), [file], options);
    },
    // issue 16: `/export`'s zip.
    async replyFile(bytes, fileName, caption) {
      const file = new AttachmentBuilder(Buffer.from(bytes), { name: fileName });
      await send(caption.slice(0, MESSAGE_MAX), [file]);
    },
    // No action: the deferred response already shows "<bot> is thinking...".
  };
  return { ctx, answered: () => answered };
}
