/**
 * In-memory implementations of the persistence ports: for tests, and for `npm start` until the
 * database layer is wired in. Nothing survives a restart.
 */
import type { ChatInfo, ChatUser, Platform } from './context.ts';
import type { Language } from './i18n.ts';
import type { Role } from './roles.ts';
import type {
  ChatDirectory,
  ClassData,
  ClassDataFilter,
  ImageStore,
  LabSubmission,
  LabSubmissionInput,
  LabSubmissionLog,
  LabelInput,
  LabelledSubmission,
  Persistence,
  StoredChat,
  StoredLabel,
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

  /** Sets the model bare photos are classified with in a chat (`/model`). */
  setDefaultModel(platform: Platform, chatId: string, model: string | null): Promise<void> {
    const k = key(platform, chatId);
    const old = this.chats.get(k);
    this.chats.set(k, {
      platform,
      chatId,
      type: old?.type ?? 'private',
      title: old?.title ?? null,
      defaultModel: model,
    });
    return Promise.resolve();
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
  listRecent(
    user: UserKey,
    limit: number,
    filter: { readonly chatId?: string } = {},
  ): Promise<Submission[]> {
    const mine = this.rows.filter(
      (r) =>
        r.platform === user.platform &&
        r.userId === user.userId &&
        (filter.chatId === undefined || r.chatId === filter.chatId),
    );
    return Promise.resolve(mine.slice(-limit).reverse());
  }
}

/**
 * {@link ImageStore} in a Map, bounded: beyond `maxBytes` in total the oldest images are dropped,
 * so a long-running web chat cannot grow without limit.
 */
/** Lab checks in memory (issue 18). */
export class MemoryLabSubmissionLog implements LabSubmissionLog {
  readonly rows: LabSubmission[] = [];

  constructor(private readonly users: MemoryUserDirectory) {}

  record(input: LabSubmissionInput): Promise<LabSubmission> {
    const row: LabSubmission = {
      ...input,
      id: String(this.rows.length + 1),
      userName: this.users.users.get(key(input.platform, input.userId))?.name ?? null,
      createdAt: new Date(),
    };
    this.rows.push(row);
    return Promise.resolve(row);
  }

  setTestAccuracy(id: string, accuracy: number): Promise<void> {
    const i = this.rows.findIndex((r) => r.id === id);
    const row = this.rows[i];
    if (row) this.rows[i] = { ...row, testAccuracy: accuracy };
    return Promise.resolve();
  }

  listByUser(user: UserKey, limit: number): Promise<LabSubmission[]> {
    const mine = this.rows.filter((r) => r.platform === user.platform && r.userId === user.userId);
    return Promise.resolve(mine.slice(-limit).reverse());
  }

  listAll(platform: Platform, task?: string): Promise<LabSubmission[]> {
    return Promise.resolve(
      this.rows.filter((r) => r.platform === platform && (task === undefined || r.task === task)),
    );
  }
}

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

/** {@link ClassData} over the in-memory submission log and image store. */
export class MemoryClassData implements ClassData {
  /** Every label row, oldest first. */
  readonly labels: StoredLabel[] = [];

  constructor(
    private readonly submissions: MemorySubmissionLog,
    private readonly images: MemoryImageStore,
    private readonly users: MemoryUserDirectory,
  ) {}

  private withLabels(s: Submission): LabelledSubmission {
    return {
      ...s,
      userName: this.users.users.get(key(s.platform, s.userId))?.name ?? null,
      labels: this.labels.filter((l) => l.submissionId === s.id),
    };
  }

  private matching(filter: ClassDataFilter): Submission[] {
    return this.submissions.rows.filter(
      (r) =>
        (filter.platform === undefined || r.platform === filter.platform) &&
        (filter.chatId === undefined || r.chatId === filter.chatId) &&
        (filter.from === undefined || r.createdAt >= filter.from) &&
        (filter.to === undefined || r.createdAt < filter.to),
    );
  }

  findByMessage(
    platform: Platform,
    chatId: string,
    messageId: string,
  ): Promise<LabelledSubmission | undefined> {
    const row = this.submissions.rows.findLast(
      (r) =>
        r.platform === platform &&
        r.chatId === chatId &&
        r.messageId === messageId &&
        isClassified(r),
    );
    return Promise.resolve(row && this.withLabels(row));
  }

  get(submissionId: string): Promise<LabelledSubmission | undefined> {
    const row = this.submissions.rows.find((r) => r.id === submissionId);
    return Promise.resolve(row && this.withLabels(row));
  }

  addLabel(label: LabelInput): Promise<StoredLabel> {
    if (!this.submissions.rows.some((r) => r.id === label.submissionId)) {
      return Promise.reject(new Error(`no submission ${label.submissionId}`));
    }
    const stored: StoredLabel = {
      ...label,
      id: String(this.labels.length + 1),
      createdAt: new Date(),
    };
    this.labels.push(stored);
    return Promise.resolve(stored);
  }

  list(filter: ClassDataFilter = {}): Promise<LabelledSubmission[]> {
    return Promise.resolve(
      this.matching(filter)
        .filter(isClassified)
        .map((r) => this.withLabels(r)),
    );
  }

  listAll(filter: ClassDataFilter = {}): Promise<LabelledSubmission[]> {
    return Promise.resolve(this.matching(filter).map((r) => this.withLabels(r)));
  }

  readImage(imagePath: string): Promise<Uint8Array> {
    const bytes = this.images.images.get(imagePath.replace(/^memory:/, ''));
    return bytes ? Promise.resolve(bytes) : Promise.reject(new Error(`no image ${imagePath}`));
  }
}

/** A submission whose photo was classified (image stored, prediction made, no error). */
function isClassified(s: Submission): boolean {
  return s.errorCode === null && s.imagePath !== null && s.predictedClass !== null;
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
  readonly labSubmissions: MemoryLabSubmissionLog;
  readonly classData: MemoryClassData;
} {
  const users = new MemoryUserDirectory();
  const submissions = new MemorySubmissionLog();
  const images = new MemoryImageStore();
  return {
    users,
    chats: new MemoryChatDirectory(),
    submissions,
    images,
    labSubmissions: new MemoryLabSubmissionLog(users),
    classData: new MemoryClassData(submissions, images, users),
  };
}
