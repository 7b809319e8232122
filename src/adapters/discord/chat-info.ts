import type { Channel, Guild } from 'discord.js';
import type { ChatInfo } from '../../core/index.ts';

/**
 * The core's view of where a message or interaction came from: a guild channel is a `group`
 * (titled "Server #channel" for the instructors' review), a DM is `private`.
 */
export function chatInfo(
  channelId: string,
  guild: Guild | null,
  channel: Channel | null,
  inGuild: boolean,
): ChatInfo {
  const channelName = channel && 'name' in channel && channel.name ? `#${channel.name}` : undefined;
  const title = [guild?.name, channelName].filter((s) => s !== undefined).join(' ');
  return {
    id: channelId,
    type: inGuild ? 'group' : 'private',
    ...(inGuild && title !== '' ? { title } : {}),
  };
}
