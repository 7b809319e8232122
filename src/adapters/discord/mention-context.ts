import { AttachmentBuilder, type Message } from 'discord.js';
import type { ChatContext, ReplyOptions } from '../../core/index.ts';
import { parseCommandText } from '../../core/index.ts';
import { attachmentImage } from './attachment-image.ts';
import { chatInfo } from './chat-info.ts';
import { componentsOf } from './components.ts';
import { IMAGE_NAME } from './interaction-context.ts';
import { literalText, MESSAGE_MAX, splitMessage } from './message-text.ts';

/**
 * Translates a message into the core's context, when it is for the bot: a message in a guild
 * that mentions the bot (`@bot` with a photo, or `@bot /predict lenet-mnist` with a photo), or
 * any message in a DM. Other messages, and those of bots, give undefined. The first attachment is
 * the image; text after the mention is read as a command (`/predict lenet-mnist`). Replies are
 * Discord replies to the message.
 *
 * Discord delivers the content and attachments of messages that mention the bot, and of DMs,
 * without the privileged Message Content intent; the bot does not ask for it.
 */
export function mentionContext(
  message: Message,
  botId: string,
  maxDownloadBytes?: number,
): ChatContext | undefined {
  if (message.author.bot || message.system) return undefined;
  const inGuild = message.inGuild();
  if (inGuild && !message.mentions.users.has(botId)) return undefined;
  const text = message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ').trim();
  const command = parseCommandText(text);
  const attachment = message.attachments.first();
  const { author } = message;
  const send = (
    content: string,
    files?: AttachmentBuilder[],
    options?: ReplyOptions,
  ): Promise<Message> =>
    message.reply({ content, ...(files ? { files } : {}), ...componentsOf(options) });
  return {
    platform: 'discord',
    literal: literalText,
    user: {
      id: author.id,
      name: author.globalName ?? author.username,
      // A message carries no client locale: the server's language (a community server's
      // setting, `en-US` by default) is the best guess; /lang overrides it.
      ...(message.guild ? { languageCode: message.guild.preferredLocale } : {}),
    },
    chat: chatInfo(message.channelId, message.guild, message.channel, inGuild),
    messageId: message.id,
    ...(command ? { command } : {}),
    ...(attachment ? { image: attachmentImage(attachment, maxDownloadBytes) } : {}),
    ...(message.reference?.messageId ? { replyToMessageId: message.reference.messageId } : {}),
    async reply(text, options) {
      const parts = splitMessage(text);
      for (const [i, part] of parts.entries()) {
        await send(part, undefined, i === parts.length - 1 ? options : undefined);
      }
    },
    async replyEditable(text) {
      const m = await send(text.slice(0, MESSAGE_MAX));
      return { chatId: m.channelId, messageId: m.id };
    },
    async replyImage(png, caption, options) {
      const file = new AttachmentBuilder(Buffer.from(png), { name: IMAGE_NAME });
      await send(caption.slice(0, MESSAGE_MAX), [file], options);
    },
    async replyFile(bytes, fileName, caption) {
      const file = new AttachmentBuilder(Buffer.from(bytes), { name: fileName });
      await send(caption.slice(0, MESSAGE_MAX), [file]);
    },
    async action() {
      if (message.channel.isSendable()) await message.channel.sendTyping();
    },
  };
}
