/**
 * The persistence the core needs, as narrow interfaces ("ports"). The core never imports a
 * database: `src/db/` implements these with Prisma, `memory-store.ts` in memory (tests, and
 * `npm start` until the database is wired in). Every method returns plain objects.
 */
import type { ChatInfo, ChatUser, Platform } from './context.ts';
import type { Language } from './i18n.ts';
import type { Role } from './roles.ts';

/** Identifies a user across the platforms: ids are only unique within one platform. */
export interface UserKey {
  readonly platform: Platform;
  readonly userId: string;
}

/** What the core keeps about a user. */
export interface StoredUser {
  readonly platform: Platform;
  readonly userId: string;
  readonly name: string;
  /** The user's `/lang` choice; null to follow the client's language. */
  readonly language: Language | null;
  /**
   * What the user may do. From the database, raised to `admin` by the dispatcher for users the
   * configuration names (`ADMINS`) and the web chat's operator: in a command, this is the
   * effective role.
   */
  readonly role: Role;
}

/** Users and their language choice. */
export interface UserDirectory {
  /**
   * Creates the user on first contact or updates their name; returns the stored record (with
   * their language choice). Called once per update, so it should be a single upsert.
   */
  upsert(platform: Platform, user: ChatUser): Promise<StoredUser>;
  /** Stores the user's `/lang` choice; null clears it. The user exists (upserted before). */
  setLanguage(user: UserKey, language: Language | null): Promise<void>;
  /** The stored user, or undefined if they never wrote (and were never granted a role). */
  find(user: UserKey): Promise<StoredUser | undefined>;
  /**
   * Stores the user's role (`/grant`, `/revoke`), creating the user when they have not written
   * yet (an admin may grant by id beforehand).
   */
  setRole(user: UserKey, role: Role): Promise<StoredUser>;
}

/** What the core keeps about a chat. */
export interface StoredChat {
  readonly platform: Platform;
  readonly chatId: string;
  readonly type: ChatInfo['type'];
  readonly title: string | null;
  /** The model that classifies bare photos in this chat; null for the configured default. */
  readonly defaultModel: string | null;
}

/** Chats and their settings. */
export interface ChatDirectory {
  /** Creates the chat on first contact or updates its title; returns the stored record. */
  upsert(platform: Platform, chat: ChatInfo): Promise<StoredChat>;
  /** Sets (null: clears) the chat's default model (`/model`). The chat exists (upserted before). */
  setDefaultModel(platform: Platform, chatId: string, model: string | null): Promise<void>;
}

/** One class and its probability, as stored with a submission. */
export interface StoredClassProbability {
  readonly classIndex: number;
  readonly label: string;
  readonly probability: number;
}

/**
 * One handled message: a classified image, a rejected input, or a failed command. Nullable
 * fields are null when they do not apply (no image, no model, or the update failed before).
 */
export interface SubmissionInput {
  readonly platform: Platform;
  readonly userId: string;
  readonly chatId: string;
  /** The platform's id of the incoming message. */
  readonly messageId: string;
  /** The command name, without a slash; `predict` for a bare photo. */
  readonly command: string;
  /** SHA-256 of the image bytes, lower-case hex. */
  readonly imageSha256: string | null;
  /**
   * Where {@link ImageStore.save} put the bytes; null when they were not stored: the upload was
   * refused (issue 19: nothing refused is stored) or was over its sender's quota.
   */
  readonly imagePath: string | null;
  readonly imageBytes: number | null;
  /** Stored width and height from the header (before EXIF rotation); null if unreadable. */
  readonly imageWidth: number | null;
  readonly imageHeight: number | null;
  readonly modelId: string | null;
  /**
   * The exact model version that answered (`0`: the shipped `models/<id>/`; `n`: the promoted
   * `<DATA_DIR>/models/<id>/<n>/`), also for a rejected photo; null without a model.
   */
  readonly modelVersion: string | null;
  /** Label of the predicted class. */
  readonly predictedClass: string | null;
  /** Probability of the predicted class, 0..1. */
  readonly confidence: number | null;
  readonly topK: readonly StoredClassProbability[] | null;
  /** Time from the update's arrival to the last reply, milliseconds. */
  readonly latencyMs: number;
  /** A user error id (`image.pdf`...), `rate_limited`, `internal`; null on success. */
  readonly errorCode: string | null;
}

/** A recorded {@link SubmissionInput}. */
export interface Submission extends SubmissionInput {
  readonly id: string;
  readonly createdAt: Date;
}

/** The log of every submission, for instructors and `/history`. */
export interface SubmissionLog {
  /** Appends a submission. */
  record(submission: SubmissionInput): Promise<Submission>;
  /**
   * The user's `limit` most recent submissions on their platform, newest first; with `chatId`,
   * only those sent in that chat (the platform's chat id).
   */
  listRecent(
    user: UserKey,
    limit: number,
    filter?: { readonly chatId?: string },
  ): Promise<Submission[]>;
}

/** Uploaded image bytes, addressed by content (platform file links expire). */
export interface ImageStore {
  /**
   * Stores the bytes under their SHA-256 (idempotent: the same bytes twice are stored once).
   * Called only for images that passed every check.
   * @param owner whose submission this is: a store with a per-user quota declines to keep bytes
   *   that would take the owner over it.
   * @returns where they are, e.g. a path relative to the data folder; null when not stored.
   */
  save(sha256: string, bytes: Uint8Array, owner?: UserKey): Promise<string | null>;
}

// issue 18: lab submissions (a student's Keras model checked against a lab task)

/** A lab check to record. */
export interface LabSubmissionInput {
  readonly platform: Platform;
  readonly userId: string;
  readonly chatId: string;
  readonly task: string;
  readonly fileName: string | null;
  readonly fileSha256: string;
  readonly filePath: string | null;
  readonly fileBytes: number;
  readonly format: 'keras' | 'h5';
  readonly kerasVersion: string | null;
  /** Each requirement's result (`RequirementResult` of src/ml/lab/check-model.ts). */
  readonly requirements: readonly unknown[];
  readonly passed: number;
  readonly total: number;
  /** Top-1 test accuracy, fraction; null until measured. */
  readonly testAccuracy: number | null;
  readonly params: number;
  readonly macs: number;
  readonly latencyMs: number;
}

/** A recorded lab check. */
export interface LabSubmission extends LabSubmissionInput {
  readonly id: string;
  /** The student's display name. */
  readonly userName: string | null;
  readonly createdAt: Date;
}

/** Where lab checks are recorded. */
export interface LabSubmissionLog {
  record(input: LabSubmissionInput): Promise<LabSubmission>;
  /** Sets the test accuracy measured after the check. */
  setTestAccuracy(id: string, accuracy: number): Promise<void>;
  /** The user's lab checks, newest first. */
  listByUser(user: UserKey, limit: number): Promise<LabSubmission[]>;
  /** Every lab check (of one task) on a platform, oldest first. */
  listAll(platform: Platform, task?: string): Promise<LabSubmission[]>;
}

/** The persistence ports together, as `createCore` takes them. */
export interface Persistence {
  readonly users: UserDirectory;
  readonly chats: ChatDirectory;
  readonly submissions: SubmissionLog;
  readonly images: ImageStore;
  /** Lab checks (issue 18); without it `/check` answers but records nothing. */
  readonly labSubmissions?: LabSubmissionLog;
  /** issue 16: labels of the class's photos. */
  readonly classData: ClassData;
}

// --- issue 16: the class teaches the bot ------------------------------------------------------

/**
 * Where a label came from: the student tapped ✓ on the bot's answer (`confirmed`) or a digit
 * (`corrected`); an instructor labelled, accepted, relabelled or excluded it (`instructor`).
 */
export type LabelSource = 'confirmed' | 'corrected' | 'instructor';

/** One label of a submission's photo, as it is added. Rows are never changed or deleted. */
export interface LabelInput {
  readonly submissionId: string;
  /** The class label (e.g. `'4'`); null only for an instructor's "exclude from training". */
  readonly label: string | null;
  /** Who labelled; null for an import from the command line. */
  readonly by: UserKey | null;
  /** The labeller's role when labelling. */
  readonly role: Role;
  readonly source: LabelSource;
}

/** A stored {@link LabelInput}. */
export interface StoredLabel extends LabelInput {
  readonly id: string;
  readonly createdAt: Date;
}

/** A classified photo with its owner's name and all its labels, oldest label first. */
export interface LabelledSubmission extends Submission {
  readonly userName: string | null;
  readonly labels: readonly StoredLabel[];
}

/** Filters of {@link ClassData.list}: chat (platform id) and a time range. */
export interface ClassDataFilter {
  readonly platform?: Platform;
  readonly chatId?: string;
  /** Inclusive lower bound of `createdAt`. */
  readonly from?: Date;
  /** Exclusive upper bound of `createdAt`. */
  readonly to?: Date;
}

/** Labels of the class's photos, and the classified submissions they refer to. */
export interface ClassData {
  /**
   * The classified submission (an image, a prediction, no error) answering the platform message
   * `messageId` in a chat, if any: the one a button under the answer, or a reply, refers to.
   */
  findByMessage(
    platform: Platform,
    chatId: string,
    messageId: string,
  ): Promise<LabelledSubmission | undefined>;
  /** One submission by id, with its labels. */
  get(submissionId: string): Promise<LabelledSubmission | undefined>;
  /** Appends a label row. */
  addLabel(label: LabelInput): Promise<StoredLabel>;
  /** Every classified submission with an image that matches the filter, oldest first. */
  list(filter?: ClassDataFilter): Promise<LabelledSubmission[]>;
  /** Every submission (classified or refused) that matches the filter, oldest first: for the CSV. */
  listAll(filter?: ClassDataFilter): Promise<LabelledSubmission[]>;
  /** The stored bytes of a submission's image (its `imagePath`). */
  readImage(imagePath: string): Promise<Uint8Array>;
}

/**
 * What an adapter offers for messages sent outside an update (a training job's progress): edit a
 * message, post an image, by the platform's ids. Discord edits with the bot token by channel and
 * message id, as interaction tokens expire after 15 minutes.
 */
export interface ChatMessenger {
  readonly platform: Platform;
  editText(chatId: string, messageId: string, text: string): Promise<void>;
  sendImage(chatId: string, png: Uint8Array, caption: string, replyTo?: string): Promise<void>;
}
