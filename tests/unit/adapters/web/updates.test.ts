import { describe, expect, it } from 'vitest';
import { WebUpdates } from '../../../../src/adapters/web/updates.ts';

describe('WebUpdates', () => {
  it('keeps only the newest edit of a message, per chat, in order', async () => {
    const u = new WebUpdates();
    const m = u.messenger();
    await m.editText('a', 'b1', 'epoch 1');
    await m.editText('b', 'b2', 'other chat');
    await m.editText('a', 'b1', 'epoch 2');
    await m.sendImage('a', new Uint8Array([137, 80, 78, 71]), 'curves', 'b1');
    const got = await u.since('a', 0, 0);
    expect(got.next).toBe(4);
    expect(got.updates).toEqual([
      { seq: 3, type: 'edit', messageId: 'b1', text: 'epoch 2' },
      {
        seq: 4,
        type: 'image',
        caption: 'curves',
        mimeType: 'image/png',
        data: 'iVBORw==',
        replyTo: 'b1',
      },
    ]);
    expect((await u.since('a', 3, 0)).updates.map((x) => x.seq)).toEqual([4]);
    // After a restart the page's `after` is beyond the server's: it reads from the start.
    expect((await u.since('b', 99, 0)).updates.map((x) => x.seq)).toEqual([2]);
  });

  it('wakes a waiting poll with the first update, and close() ends the others at once', async () => {
    const u = new WebUpdates();
    const waiting = u.since('a', 0, 10_000);
    const t0 = Date.now();
    setTimeout(() => u.push('a', { type: 'edit', messageId: 'b1', text: 'x' }), 50);
    expect((await waiting).updates).toHaveLength(1);
    const other = u.since('b', u.last, 10_000);
    u.close();
    expect(await other).toEqual({ updates: [], next: 1 });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('bounds what it keeps: updates per chat and chats', async () => {
    const u = new WebUpdates({ perChat: 3, chats: 2 });
    for (let i = 0; i < 5; i++) u.push('a', { type: 'edit', messageId: `b${i}`, text: String(i) });
    u.push('b', { type: 'edit', messageId: 'b9', text: 'b' });
    expect((await u.since('a', 0, 0)).updates.map((x) => x.seq)).toEqual([3, 4, 5]);
    u.push('c', { type: 'edit', messageId: 'b9', text: 'c' });
    // 'a' changed least recently: dropped for 'c'.
    expect((await u.since('a', 0, 0)).updates).toEqual([]);
    expect((await u.since('b', 0, 0)).updates).toHaveLength(1);
    // What a dropped or replaced update held is counted out of the bytes.
    expect(u.bytes).toBe(2 * (64 + 'b9'.length + 1));
  });

  it("drops what the page acknowledged, after a grace period for the chat's other tabs", async () => {
    let clock = 1_000_000;
    const u = new WebUpdates({ ackGraceMs: 60_000, now: () => clock });
    const m = u.messenger();
    await m.editText('a', 'b1', 'epoch 1');
    await m.sendImage('a', new Uint8Array(300), 'curves', 'b1');
    await m.editText('b', 'b2', 'other chat');
    const before = u.bytes;
    const read = await u.since('a', 0, 0);
    expect(read.updates.map((x) => x.seq)).toEqual([1, 2]);
    expect(u.bytes).toBe(before); // not acknowledged yet
    // Tab 1 acknowledges both; tab 2 of the same chat, whose poll was not waiting, still gets them.
    expect(await u.since('a', 2, 0)).toEqual({ updates: [], next: 3 });
    clock += 59_000;
    expect((await u.since('a', 0, 0)).updates.map((x) => x.seq)).toEqual([1, 2]);
    expect(u.bytes).toBe(before);
    // The grace period counts from the first acknowledgement, not from the last.
    expect(await u.since('a', 1, 0)).toEqual({ updates: [read.updates[1]], next: 3 });
    clock += 1_000;
    expect(await u.since('a', 0, 0)).toEqual({ updates: [], next: 3 });
    // Gone for good; chat 'b' is untouched.
    expect(u.bytes).toBe(64 + 'b2'.length + 'other chat'.length);
    expect((await u.since('b', 0, 0)).updates.map((x) => x.seq)).toEqual([3]);
    // A page from before a restart (its `after` beyond the server's) acknowledges nothing.
    clock += 600_000;
    expect((await u.since('b', 99, 0)).updates.map((x) => x.seq)).toEqual([3]);
  });

  it('caps the bytes kept in all: the oldest update of any chat goes first, the newest stays', async () => {
    const image = (n: number): Uint8Array => new Uint8Array(n);
    // 300 bytes are 400 base64 characters: an image counts 64 + caption (1) + 400 = 465.
    const u = new WebUpdates({ maxBytes: 1000, ackGraceMs: 0 });
    const m = u.messenger();
    await m.sendImage('a', image(300), '1');
    await m.sendImage('b', image(300), '2');
    expect(u.bytes).toBe(930);
    await m.sendImage('a', image(300), '3');
    expect(u.bytes).toBe(930);
    expect((await u.since('a', 0, 0)).updates.map((x) => x.seq)).toEqual([3]);
    expect((await u.since('b', 0, 0)).updates.map((x) => x.seq)).toEqual([2]);
    // One update over the cap by itself is kept (alone) until it is read.
    await m.sendImage('b', image(1500), '4');
    expect((await u.since('a', 0, 0)).updates).toEqual([]);
    expect((await u.since('b', 0, 0)).updates.map((x) => x.seq)).toEqual([4]);
    expect(u.bytes).toBe(64 + 1 + 2000);
    await u.since('b', 4, 0);
    expect(u.bytes).toBe(0); // acknowledged, and no grace period here
  });
});
