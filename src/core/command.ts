/**
 * What a command is, and what it gets when it runs. One command per file in `commands/`.
 */
import type { Logger } from 'pino';
import type { ProbabilityChartInput } from '../imaging/chart.ts';
import type { ImageInfo, ImageLimits } from '../imaging/decode.ts';
import type { Classifier, ModelCatalog } from './classifier.ts';
import type { ChatContext } from './context.ts';
import type { Explainer } from './explainer.ts';
import type { LabTestSets } from './lab-check.ts';
import type { Language, Translate } from './i18n.ts';
import type { Persistence, StoredChat, StoredUser, SubmissionInput } from './ports.ts';
import type { ModelProfiler } from './profiler.ts';
import type { UserErrorId } from '../errors.ts';
import type { AdminKey, Role } from './roles.ts';
import type { TrainingService } from './training.ts';

/** A text in every language the core speaks. */
export type LocalizedText = Readonly<Record<Language, string>>;

/**
 * A declared command option, for adapters with structured commands (Discord slash commands).
 * Text adapters ignore these: Telegram users type the arguments after the command.
 */
export interface CommandOption {
  /** Lower-case, `[a-z0-9_-]{1,32}` (Discord's rule). */
  readonly name: string;
  /** `image`: an attachment (becomes `ctx.image`); `string`: joined into `args` in order. */
  readonly type: 'string' | 'image';
  readonly required?: boolean;
  readonly description: LocalizedText;
}

/** The services a command may use. */
export interface CoreServices extends Persistence {
  readonly models: ModelCatalog;
  readonly classifier: Classifier;
  /** Grad-CAM, saliency and the like, one at a time (`/gradcam`, `/saliency`). */
  readonly explainer: Explainer;
  /**
   * Renders `/predict`'s probability chart to PNG: in the inference pool when there is one
   * (vega's layout is JavaScript and would hold the event loop), else `renderProbabilityChart`.
   */
  readonly renderChart: (input: ProbabilityChartInput) => Promise<Uint8Array>;
  /** Architecture statistics and measured speed per model, cached (`/arch`, `/compare`). */
  readonly profiler: ModelProfiler;
  /** Upload limits, checked before download (declared size) and before decoding. */
  readonly limits: ImageLimits;
  /** The model for bare photos in chats without their own default (`lenet-mnist`). */
  readonly defaultModel: string;
  readonly logger: Logger;
  /** The lab's test sets for `/check` (issue 18); without them models are checked, not tested. */
  readonly labTestSets?: LabTestSets;
  /** The trainer (jobs and model versions); absent where no database backs the bot. */
  readonly training?: TrainingService;
  /** Users the configuration names as admins (`ADMINS`); default none. */
  readonly admins?: readonly AdminKey[];
}

/** The image of the update, downloaded, stored and checked from its header. */
export interface LoadedImage {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly info: ImageInfo;
}

/**
 * The result fields of the update's submission row, which a command that classifies fills in.
 * The dispatcher fills in the rest (who, where, image, latency, error code) and records it.
 */
export type SubmissionResult = {
  -readonly [
    K in 'modelId' | 'modelVersion' | 'predictedClass' | 'confidence' | 'topK'
  ]: SubmissionInput[K];
};

/** What a command's `execute` receives: the adapter's context, plus what the core resolved. */
export interface CommandContext extends ChatContext {
  /** The reply language (the user's `/lang` choice, else the client's language). */
  readonly lang: Language;
  /** Translates into {@link lang}. */
  readonly t: Translate;
  /** The raw argument string, trimmed; `''` when none (and for a bare photo). */
  readonly args: string;
  readonly storedUser: StoredUser;
  readonly storedChat: StoredChat;
  /**
   * Downloads the update's image once, after checking its declared size; hashes and stores it;
   * reads its header. The row records what was learned even when this throws.
   * @throws {UserError} `image.missing` without an image; the header checks' ids
   *   (`image.too_large_bytes`, `image.pdf`, `image.empty`...).
   */
  loadImage(): Promise<LoadedImage>;
  /** Shows a chat action if the adapter supports it; never throws. */
  showAction(kind: 'typing' | 'upload_photo'): void;
  /** The result fields of this update's submission row. */
  readonly submission: SubmissionResult;
  /** The commands this core serves, in menu order (for `/help`). */
  readonly commands: readonly Command[];
}

/**
 * A chat command. Each lives in its own file as a default export, and is listed once in
 * `commands/index.ts`.
 *
 * @example
 * export default {
 *   name: 'ping',
 *   description: { en: 'check that I am alive', ru: 'проверить, что я на связи' },
 *   async execute(ctx) {
 *     await ctx.reply(ctx.t('ping.pong'));
 *   },
 * } satisfies Command;
 */
export interface Command {
  /** Lower-case, `[a-z0-9_]{1,32}` (valid on Telegram and Discord); typed as `/name`. */
  readonly name: string;
  /** One line for `/help` and the platforms' command menus. */
  readonly description: LocalizedText;
  readonly options?: readonly CommandOption[];
  /** The arguments as `/help` shows them after the name (`[model] [smooth]`); none if absent. */
  readonly usage?: LocalizedText;
  /** One example of a full command line with arguments, for `/help` (`/saliency lenet-mnist smooth`). */
  readonly example?: string;
  /**
   * The weakest role allowed to run it (default `student`: everyone). The dispatcher refuses
   * anyone weaker with `role.required` (or {@link refusal}) and a log line; `/help` lists it
   * only to those allowed.
   */
  readonly role?: Role;
  /**
   * The error the weaker are refused with instead of `role.required`, when the command has a
   * better answer for them (`/submissions` points students to `/history`).
   */
  readonly refusal?: UserErrorId;
  /** True when successful runs are logged as submissions (failures always are). */
  readonly logsSubmission?: boolean;
  /**
   * Runs the command and replies through `ctx`.
   * @throws {UserError} for bad input: the dispatcher replies with its localized message.
   */
  execute(ctx: CommandContext, services: CoreServices): Promise<void>;
}
