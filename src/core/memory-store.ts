/**
 * In-memory implementations of the persistence ports: for tests, and for `npm start` until the
 * database layer is wired in. Nothing survives a restart.
 */
import type { ChatInfo, ChatUser, Platform } from './context.ts';
import type { Language } from './i18n.ts';
import type { Role } from './roles.ts';
import type {
  ChatDirectory,
  ImageStore,
  Persistence,
  StoredChat,
  StoredUser,
  Submission,
  SubmissionInput,
  SubmissionLog,
  UserDirectory,
  UserKey,
} from './ports.ts';

const key = (platform: Platform, id: string): string => `${platform}:${id}`;

/** {@link UserDirectory} in a Map. */
export class MemoryUserDirectory implements UserDirectory {
  /** The stored users by `platform:userId`, for tests to inspect. */
  readonly users = new Map<string, StoredUser>();

  /** Creates or renames the user; keeps their language choice. */
  upsert(platform: Platform, user: ChatUser): Promise<StoredUser> {
    const k = key(platform, user.id);
    const old = this.users.get(k);
    const stored: StoredUser = {
      platform,
      userId: user.id,
      name: user.name,
      language: old?.language ?? null,
      role: old?.role ?? 'student',
    };
    this.users.set(k, stored);
    return Promise.resolve(stored);
  }

  /** Sets or clears the user's language choice. */
  setLanguage(user: UserKey, language: Language | null): Promise<void> {
    const k = key(user.platform, user.userId);
    const old = this.users.get(k);
    this.users.set(k, {
      platform: user.platform,
      userId: user.userId,
      name: old?.name ?? '',
      language,
      role: old?.role ?? 'student',
    });
    return Promise.resolve();
  }

  /** The stored user, if any. */
  find(user: UserKey): Promise<StoredUser | undefined> {
    return Promise.resolve(this.users.get(key(user.platform, user.userId)));
  }

  /** Sets the role, creating the user (named by their id) when unknown. */
  setRole(user: UserKey, role: Role): Promise<StoredUser> {
    const k = key(user.platform, user.userId);
    const old = this.users.get(k);
    const stored: StoredUser = {
      platform: user.platform,
      userId: user.userId,
      name: old?.name ?? user.userId,
      language: old?.language ?? null,
      role,
    };
    this.users.set(k, stored);
    return Promise.resolve(stored);
  }
}

/** {@link ChatDirectory} in a Map, with a setter for the default model. */
export class MemoryChatDirectory implements ChatDirectory {
  private readonly chats = new Map<string, StoredChat>();

  /** Creates or renames the chat; keeps its default model. */
  upsert(platform: Platform, chat: ChatInfo): Promise<StoredChat> {
    const k = key(platform, chat.id);
    const stored: StoredChat = {
      platform,
      chatId: chat.id,
      type: chat.type,
      title: chat.title ?? null,
      defaultModel: this.chats.get(k)?.defaultModel ?? null,
    };
    this.chats.set(k, stored);
    return Promise.resolve(stored);
  }

  /** Sets the model bare photos are classified with in a chat (no command does this yet). */
  setDefaultModel(platform: Platform, chat: ChatInfo, model: string | null): void {
    this.chats.set(key(platform, chat.id), {
      platform,
      chatId: chat.id,
      type: chat.type,
      title: chat.title ?? null,
      defaultModel: model,
    });
  }
}

/** {@link SubmissionLog} in an array, oldest first. */
export class MemorySubmissionLog implements SubmissionLog {
  /** Every recorded submission, oldest first, for tests to inspect. */
  readonly rows: Submission[] = [];

  /** Appends a submission with the next id and the current time. */
  record(submission: SubmissionInput): Promise<Submission> {
    const row: Submission = {
      ...submission,
      id: String(this.rows.length + 1),
      createdAt: new Date(),
    };
    this.rows.push(row);
    return Promise.resolve(row);
  }

  /** The user's latest submissions, newest first. */
  listRecent(user: UserKey, limit: number): Promise<Submission[]> {
    const mine = this.rows.filter((r) => r.platform === user.platform && r.userId === user.userId);
    return Promise.resolve(mine.slice(-limit).reverse());
  }
}

/**
 * {@link ImageStore} in a Map, bounded: beyond `maxBytes` in total the oldest images are dropped,
 * so a long-running web chat cannot grow without limit.
 */
export class MemoryImageStore implements ImageStore {
  /** Stored bytes by SHA-256, oldest first. */
  readonly images = new Map<string, Uint8Array>();
  private total = 0;

  constructor(private readonly maxBytes = 256 * 2 ** 20) {}

  /** Keeps the bytes; returns `memory:<sha256>`. */
  save(sha256: string, bytes: Uint8Array): Promise<string> {
    if (!this.images.has(sha256)) {
      this.images.set(sha256, bytes.slice());
      this.total += bytes.length;
      for (const [k, v] of this.images) {
        if (this.total <= this.maxBytes || k === sha256) break;
        this.images.delete(k);
        this.total -= v.length;
      }
    }
    return Promise.resolve(`memory:${sha256}`);
  }
}

/**
 * All four ports in memory, each exposed with its concrete type so tests can inspect rows.
 *
 * @example
 * const store = createMemoryStore();
 * const core = createCore({ ...store, models, classifier, ... });
 * store.submissions.rows; // what was recorded
 */
export function createMemoryStore(): Persistence & {
  readonly users: MemoryUserDirectory;
  readonly chats: MemoryChatDirectory;
  readonly submissions: MemorySubmissionLog;
  readonly images: MemoryImageStore;
} {
  return {
    users: new MemoryUserDirectory(),
    chats: new MemoryChatDirectory(),
    submissions: new MemorySubmissionLog(),
    images: new MemoryImageStore(),
  };
}
