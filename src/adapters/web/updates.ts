/**
 * issue 14: what the web chat tells a page after its request was answered: edits of a message
 * (a training job's progress) and images posted under it (the learning curves). The web chat
 * answers each message in one HTTP response, so later changes wait here, per chat, until the
 * page asks for them (`GET /api/updates?after=<seq>`, a long poll that returns as soon as there
 * is one). Kept in memory, bounded per chat, in chats and in bytes (the images are base64); what
 * a page acknowledged (asked for a later `after`) is dropped a grace period later, so that a
 * second tab of the same user, whose poll was not waiting at that moment, still gets it. A restart
 * forgets them, as it forgets the page's identity.
 */
import type { ChatMessenger } from '../../core/index.ts';

/** One change of the conversation after its answer. */
export type WebUpdate =
  | {
      readonly seq: number;
      readonly type: 'edit';
      readonly messageId: string;
      readonly text: string;
    }
  | {
      readonly seq: number;
      readonly type: 'image';
      /** The bot message it answers, when known. */
      readonly replyTo?: string;
      readonly caption: string;
      readonly mimeType: 'image/png';
      /** The PNG, base64. */
      readonly data: string;
    };

/** Distributive `Omit`: each member of the union without `seq`. */
type Unsequenced<U> = U extends unknown ? Omit<U, 'seq'> : never;

/** The body of `GET /api/updates`' answer. */
export interface WebUpdatesAnswer {
  readonly updates: WebUpdate[];
  /** Pass as `after` next time. */
  readonly next: number;
}

interface ChatLog {
  updates: WebUpdate[];
  /** When each acknowledged update was first acknowledged (ms since the epoch), by `seq`. */
  acked: Map<number, number>;
}

/** Options of {@link WebUpdates}. */
export interface WebUpdatesOptions {
  /** Updates kept per chat (the oldest dropped first; default 50). */
  readonly perChat?: number;
  /** Chats kept (the least recently changed dropped first; default 1000). */
  readonly chats?: number;
  /**
   * Bytes kept in all, counted as the updates' string lengths (the oldest update of any chat
   * dropped first, the newest always kept; default 32 MiB).
   */
  readonly maxBytes?: number;
  /**
   * How long an acknowledged update stays for the chat's other pages (another tab whose poll was
   * not waiting when the first one read it), in ms; default 120,000.
   */
  readonly ackGraceMs?: number;
  /** The clock, in ms since the epoch (tests); default `Date.now`. */
  readonly now?: () => number;
}

/** The bytes an update holds, about: its strings (base64 image data included) and a bit. */
function sizeOf(u: WebUpdate): number {
  return u.type === 'edit'
    ? 64 + u.messageId.length + u.text.length
    : 64 + (u.replyTo?.length ?? 0) + u.caption.length + u.data.length;
}

/**
 * The pending updates of every web chat, and the long polls waiting for them.
 *
 * @example
 * const updates = new WebUpdates();
 * const messenger = updates.messenger(); // for the trainer's progress reporter
 * await messenger.editText(chatId, 'b3', 'Job 1 (lenet-mnist): epoch 1/1 ...');
 * const { updates: list, next } = await updates.since(chatId, 0, 25_000);
 */
export class WebUpdates {
  private seq = 0;
  private readonly logs = new Map<string, ChatLog>();
  private readonly waiters = new Set<() => void>();
  private readonly perChat: number;
  private readonly chats: number;
  private readonly maxBytes: number;
  private readonly ackGraceMs: number;
  private readonly now: () => number;
  private total = 0;
  private closed = false;

  constructor(options: WebUpdatesOptions = {}) {
    this.perChat = options.perChat ?? 50;
    this.chats = options.chats ?? 1000;
    this.maxBytes = options.maxBytes ?? 32 << 20;
    this.ackGraceMs = options.ackGraceMs ?? 120_000;
    this.now = options.now ?? Date.now;
  }

  /** The sequence number of the last update of any chat (0: none yet). */
  get last(): number {
    return this.seq;
  }

  /** The bytes kept now, as counted for `maxBytes`. */
  get bytes(): number {
    return this.total;
  }

  /** Records an update of a chat and wakes the polls waiting. */
  push(chatId: string, update: Unsequenced<WebUpdate>): void {
    this.seq++;
    let log = this.logs.get(chatId);
    if (log) this.logs.delete(chatId); // re-inserted: the map's order is the least recent first
    log ??= { updates: [], acked: new Map() };
    const added: WebUpdate = { ...update, seq: this.seq };
    log.updates.push(added);
    this.total += sizeOf(added);
    // A newer edit of a message replaces the older ones still waiting.
    if (update.type === 'edit') {
      this.keep(log, (u) => u === added || u.type !== 'edit' || u.messageId !== update.messageId);
    }
    if (log.updates.length > this.perChat) {
      const cut = log.updates[log.updates.length - this.perChat - 1]!.seq;
      this.keep(log, (u) => u.seq > cut);
    }
    this.logs.set(chatId, log);
    while (this.logs.size > this.chats) {
      const oldest = this.logs.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    // Over the byte cap: the oldest update of any chat goes first (chats' logs are in order).
    while (this.total > this.maxBytes) {
      let from: [string, ChatLog] | undefined;
      for (const entry of this.logs) {
        const first = entry[1].updates[0];
        if (first && first !== added && (!from || first.seq < from[1].updates[0]!.seq)) {
          from = entry;
        }
      }
      if (!from) break;
      const gone = from[1].updates[0]!.seq;
      this.keep(from[1], (u) => u.seq !== gone);
      if (from[1].updates.length === 0) this.logs.delete(from[0]);
    }
    this.wake();
  }

  /**
   * The chat's updates after `after`; when there are none, waits up to `waitMs` for one (a long
   * poll). An `after` beyond the last sequence number (the server restarted) reads from the start.
   * The page has read the updates up to `after`: they are dropped once `ackGraceMs` has passed
   * since the first page acknowledged them (a second tab of the chat may still be behind).
   */
  async since(chatId: string, after: number, waitMs: number): Promise<WebUpdatesAnswer> {
    const from = after > this.seq ? 0 : after;
    const log = this.logs.get(chatId);
    if (log) {
      const now = this.now();
      for (const u of log.updates) {
        if (u.seq <= from && !log.acked.has(u.seq)) log.acked.set(u.seq, now);
      }
      this.keep(log, (u) => {
        const at = log.acked.get(u.seq);
        return at === undefined || now - at < this.ackGraceMs;
      });
      if (log.updates.length === 0) this.drop(chatId);
    }
    const read = (): WebUpdate[] =>
      (this.logs.get(chatId)?.updates ?? []).filter((u) => u.seq > from);
    let found = read();
    const deadline = Date.now() + waitMs;
    while (found.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        this.waiters.add(done);
      });
      found = read();
    }
    return { updates: found, next: Math.max(from, this.seq) };
  }

  /** Ends every waiting poll (the server is closing) and refuses to wait from now on. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** The trainer's messenger for the web chat: edits and images become updates of the chat. */
  messenger(): ChatMessenger {
    return {
      platform: 'web',
      editText: (chatId, messageId, text) => {
        this.push(chatId, { type: 'edit', messageId, text });
        return Promise.resolve();
      },
      sendImage: (chatId, png, caption, replyTo) => {
        this.push(chatId, {
          type: 'image',
          caption,
          mimeType: 'image/png',
          data: Buffer.from(png).toString('base64'),
          ...(replyTo === undefined ? {} : { replyTo }),
        });
        return Promise.resolve();
      },
    };
  }

  /** Keeps the log's updates that pass `test`, counting the bytes of the others out. */
  private keep(log: ChatLog, test: (u: WebUpdate) => boolean): void {
    const kept: WebUpdate[] = [];
    for (const u of log.updates) {
      if (test(u)) kept.push(u);
      else {
        this.total -= sizeOf(u);
        log.acked.delete(u.seq);
      }
    }
    log.updates = kept;
  }

  /** Forgets a chat's log. */
  private drop(chatId: string): void {
    const log = this.logs.get(chatId);
    if (!log) return;
    this.keep(log, () => false);
    this.logs.delete(chatId);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
