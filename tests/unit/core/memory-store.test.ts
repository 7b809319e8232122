import { describe, expect, it } from 'vitest';
import { createMemoryStore, MemoryImageStore } from '../../../src/core/memory-store.ts';
import type { SubmissionInput } from '../../../src/core/ports.ts';

const row = (userId: string, messageId: string): SubmissionInput => ({
  platform: 'telegram',
  userId,
  chatId: 'c',
  messageId,
  command: 'predict',
  imageSha256: null,
  imagePath: null,
  imageBytes: null,
  imageWidth: null,
  imageHeight: null,
  modelId: null,
  modelVersion: null,
  predictedClass: null,
  confidence: null,
  topK: null,
  latencyMs: 1,
  errorCode: null,
});

describe('the in-memory store', () => {
  it("keeps a user's language choice across upserts and renames", async () => {
    const { users } = createMemoryStore();
    expect((await users.upsert('telegram', { id: '1', name: 'A' })).language).toBeNull();
    await users.setLanguage({ platform: 'telegram', userId: '1' }, 'ru');
    expect(await users.upsert('telegram', { id: '1', name: 'B' })).toEqual({
      platform: 'telegram',
      userId: '1',
      name: 'B',
      language: 'ru',
      role: 'student',
    });
    // Same id on another platform is another user.
    expect((await users.upsert('discord', { id: '1', name: 'A' })).language).toBeNull();
  });

  it("lists a user's latest submissions, newest first, on their platform only", async () => {
    const { submissions } = createMemoryStore();
    for (let i = 1; i <= 7; i++) await submissions.record(row('u', String(i)));
    await submissions.record(row('other', '8'));
    await submissions.record({ ...row('u', '9'), platform: 'discord' });
    const recent = await submissions.listRecent({ platform: 'telegram', userId: 'u' }, 5);
    expect(recent.map((r) => r.messageId)).toEqual(['7', '6', '5', '4', '3']);
    expect(recent[0]?.createdAt).toBeInstanceOf(Date);
  });

  it('stores each image once and drops the oldest beyond its size bound', async () => {
    const images = new MemoryImageStore(10);
    expect(await images.save('a', new Uint8Array(6))).toBe('memory:a');
    await images.save('a', new Uint8Array(6));
    await images.save('b', new Uint8Array(6));
    expect([...images.images.keys()]).toEqual(['b']);
  });

  it('keeps a chat default model across upserts', async () => {
    const { chats } = createMemoryStore();
    const chat = { id: 'g', type: 'group' as const, title: 'Lab' };
    chats.setDefaultModel('discord', chat, 'lenet-mnist');
    expect((await chats.upsert('discord', { ...chat, title: 'Lab 2' })).defaultModel).toBe(
      'lenet-mnist',
    );
  });
});
