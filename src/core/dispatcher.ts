import { createHash } from 'node:crypto';
import { inspectImage } from '../imaging/decode.ts';
import type {
  Command,
  CommandContext,
  CoreServices,
  LoadedImage,
  SubmissionResult,
} from './command.ts';
import { handlePress } from './buttons.ts';
import { commands as defaultCommands, BARE_IMAGE_COMMAND } from './commands/index.ts';
import { literalParams, type ChatContext, type Literal } from './context.ts';
import { isUserError, UserError } from '../errors.ts';
import {
  clientLanguage,
  formatMegabytes,
  resolveLanguage,
  translator,
  userErrorKey,
  type Language,
  type Translate,
} from './i18n.ts';
import type { StoredUser, SubmissionInput } from './ports.ts';
import { createRateGate, type GateStats, type RateLimit } from './rate-gate.ts';
import { effectiveRole, isRole, requireRole } from './roles.ts';

/** Options of {@link createCore}. */
export interface CoreOptions {
  /** The commands served (default: `commands/index.ts`). */
  readonly commands?: readonly Command[];
  /**
   * Per-user limit, applied to every update before anything else (default 12 per 60 s): the
   * first update over it gets a notice, and the user's last update of the window is answered
   * when the window ends (see `rate-gate.ts`). `false` disables the limit.
   */
  readonly rateLimit?: RateLimit | false;
  /** Per-group-chat limit, the same way (default 60 per 60 s; `false` disables it). */
  readonly chatRateLimit?: RateLimit | false;
  /**
   * Updates of one user handled at once (default 3); one more is answered "still working on your
   * earlier messages" and not recorded.
   */
  readonly maxInFlightPerUser?: number;
}

/** What the core dropped or delayed instead of answering, since it started. */
export interface CoreMetrics extends Readonly<GateStats> {
  /** Updates routed to an answer (not ignored group chatter). */
  readonly received: number;
  /** Refused because the inference queue was full (`server.busy`): answered, not recorded. */
  readonly busy: number;
  /** Refused because the user had too many updates in flight: answered, not recorded. */
  readonly busyUser: number;
}

/** The platform-neutral bot: adapters hand it every update. */
export interface Core {
  /**
   * Handles one update: resolves the language, applies the rate limit, runs the command (a bare
   * image runs `/predict`), replies through `ctx`, and records a submission row for image
   * commands and every failure. Never rejects: errors are answered, logged and recorded, so one
   * failing update cannot stop an adapter's loop. After {@link close} it ignores new updates.
   */
  handle(ctx: ChatContext): Promise<void>;
  /** The commands served, in menu order (for adapters that register commands, e.g. Discord). */
  readonly commands: readonly Command[];
  /** Updates being handled now. */
  readonly inFlight: number;
  /** Counters of dropped and delayed updates (none of them written as rows). */
  readonly metrics: CoreMetrics;
  /**
   * Stops accepting updates and waits until those in flight are answered, or `timeoutMs` passes
   * (their replies are then abandoned by the caller shutting the adapters down).
   * @returns true when everything in flight finished in time.
   */
  close(timeoutMs?: number): Promise<boolean>;
}

type Route =
  | { readonly kind: 'command'; readonly command: Command; readonly args: string }
  | { readonly kind: 'press' }
  | { readonly kind: 'unknown'; readonly name: string }
  | { readonly kind: 'hint' }
  | { readonly kind: 'ignore' };

interface ImageFields {
  imageSha256: string | null;
  imagePath: string | null;
  imageBytes: number | null;
  imageWidth: number | null;
  imageHeight: number | null;
}

/**
 * The user-error parameters that echo what the user typed or sent (an argument, a model or task
 * name, a layer or class name from their Keras file):
 * passed through `ChatContext.literal` so that they show literally.
 */
const ECHOED_PARAMS = ['value', 'model', 'task', 'layer', 'className'] as const;

/**
 * Creates the core over its services.
 *
 * @example
 * const core = createCore({ ...createMemoryStore(), models: registry, classifier, limits,
 *   defaultModel: 'lenet-mnist', logger });
 * await core.handle(ctx); // never throws
 */
export function createCore(services: CoreServices, options: CoreOptions = {}): Core {
  const commands = options.commands ?? defaultCommands;
  const byName = new Map(commands.map((c) => [c.name, c]));
  const log = services.logger;
  const maxPerUser = options.maxInFlightPerUser ?? 3;
  const perUser = new Map<string, number>();
  const counts = { received: 0, busy: 0, busyUser: 0 };
  const gate = createRateGate(
    options.rateLimit ?? { points: 12, durationSeconds: 60 },
    options.chatRateLimit ?? { points: 60, durationSeconds: 60 },
    async (ctx, admitted) => {
      if (admitted) {
        await track(ctx, () => process(ctx, route(ctx)));
        return;
      }
      log.info({ platform: ctx.platform, chat: ctx.chat.id }, 'late update dropped: rate limited');
      await safely('rate-limit notice', ctx, () =>
        ctx.reply(translator(clientLanguage(ctx.user.languageCode))('rate_limited.dropped')),
      );
    },
  );

  let inFlight = 0;
  let closing = false;
  const idleWaiters: (() => void)[] = [];

  function route(ctx: ChatContext): Route {
    const group = ctx.chat.type === 'group';
    if (ctx.press) return { kind: 'press' };
    if (ctx.command) {
      const name = ctx.command.name.toLowerCase();
      const command = byName.get(name);
      if (command) return { kind: 'command', command, args: ctx.command.args.trim() };
      // In a group the command may be meant for another bot.
      return group ? { kind: 'ignore' } : { kind: 'unknown', name };
    }
    const bare = byName.get(BARE_IMAGE_COMMAND);
    if (ctx.image && bare) return { kind: 'command', command: bare, args: '' };
    return group ? { kind: 'ignore' } : { kind: 'hint' };
  }

  function errorParams(
    e: UserError,
    lang: Language,
    literal?: Literal,
  ): Record<string, string | number> {
    const { limits } = services;
    const role = e.params.role;
    return {
      // What the user typed, echoed back: shown literally (Discord escapes its Markdown).
      ...literalParams(e.params, ECHOED_PARAMS, literal),
      ...(e.params.known === '' ? { known: '—' } : {}),
      ...(typeof role === 'string' && isRole(role)
        ? { role: translator(lang)(`role.name.${role}`) }
        : {}),
      maxSize: formatMegabytes(limits.maxBytes, lang),
      maxMegapixels: new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(
        limits.maxPixels / 1e6,
      ),
    };
  }

  async function safely(what: string, ctx: ChatContext, f: () => Promise<unknown>): Promise<void> {
    try {
      await f();
    } catch (e) {
      log.error({ err: e, platform: ctx.platform, chat: ctx.chat.id }, `${what} failed`);
    }
  }

  async function process(ctx: ChatContext, r: Route): Promise<void> {
    const started = performance.now();
    if (r.kind === 'ignore') return;
    const commandName =
      r.kind === 'command' ? r.command.name : r.kind === 'unknown' ? r.name : r.kind;
    let lang: Language = clientLanguage(ctx.user.languageCode);
    let t: Translate = translator(lang);
    const result: SubmissionResult = {
      modelId: null,
      modelVersion: null,
      predictedClass: null,
      confidence: null,
      topK: null,
    };
    const image: ImageFields = {
      imageSha256: null,
      imagePath: null,
      imageBytes: null,
      imageWidth: null,
      imageHeight: null,
    };
    let record = false;
    let errorCode: string | null = null;
    try {
      const [dbUser, storedChat] = await Promise.all([
        services.users.upsert(ctx.platform, ctx.user),
        services.chats.upsert(ctx.platform, ctx.chat),
      ]);
      const storedUser: StoredUser = {
        ...dbUser,
        role: effectiveRole(
          dbUser.role,
          ctx.platform,
          ctx.user.id,
          services.admins ?? [],
          ctx.operator === true,
        ),
      };
      lang = resolveLanguage(storedUser.language, ctx.user.languageCode);
      t = translator(lang);
      if (r.kind === 'unknown') {
        await ctx.reply(t('command.unknown', { command: r.name }));
        return;
      }
      if (r.kind === 'hint') {
        await ctx.reply(t('hint.send_photo'));
        return;
      }
      record = r.kind === 'command' && r.command.logsSubmission === true;
      if (r.kind === 'command' && r.command.role !== undefined) {
        requireRole(storedUser, r.command.role, r.command.name, r.command.refusal);
      }
      // Built field by field, not spread: an adapter's context may be a class instance.
      const commandCtx: CommandContext = {
        platform: ctx.platform,
        user: ctx.user,
        chat: ctx.chat,
        messageId: ctx.messageId,
        ...(ctx.command ? { command: ctx.command } : {}),
        ...(ctx.image ? { image: ctx.image } : {}),
        ...(ctx.replyTo ? { replyTo: ctx.replyTo } : {}),
        ...(ctx.mentions ? { mentions: ctx.mentions } : {}),
        ...(ctx.operator === undefined ? {} : { operator: ctx.operator }),
        ...(ctx.literal ? { literal: ctx.literal } : {}),
        ...(ctx.replyToMessageId === undefined ? {} : { replyToMessageId: ctx.replyToMessageId }),
        ...(ctx.press ? { press: ctx.press } : {}),
        reply: (text, options) => ctx.reply(text, options),
        ...(ctx.replyEditable ? { replyEditable: (text: string) => ctx.replyEditable!(text) } : {}),
        replyImage: (png, caption, options) => ctx.replyImage(png, caption, options),
        ...(ctx.replyFile
          ? {
              replyFile: (bytes: Uint8Array, fileName: string, caption: string) =>
                ctx.replyFile!(bytes, fileName, caption),
            }
          : {}),
        lang,
        t,
        args: r.kind === 'command' ? r.args : '',
        storedUser,
        storedChat,
        submission: result,
        commands,
        loadImage: once(() => loadImage(ctx, image)),
        showAction: (kind) => {
          if (ctx.action) void ctx.action(kind).catch(() => undefined);
        },
      };
      if (r.kind === 'press') {
        // issue 16: a press is answered in place, never logged as a submission.
        await handlePress(commandCtx, ctx.press!, services);
        return;
      }
      await r.command.execute(commandCtx, services);
    } catch (e) {
      record = true;
      const where = { platform: ctx.platform, chat: ctx.chat.id, messageId: ctx.messageId };
      if (isUserError(e) && e.id === 'server.busy') {
        // Refused before any work: answered with the wait, counted, not recorded.
        record = false;
        counts.busy++;
        log.warn({ ...where, command: commandName }, 'update refused: inference queue full');
        await safely('busy reply', ctx, () =>
          ctx.reply(t(userErrorKey(e.id), errorParams(e, lang, ctx.literal))),
        );
      } else if (isUserError(e)) {
        errorCode = e.id;
        log.info(
          { ...where, user: ctx.user.id, command: commandName, code: e.id, detail: e.message },
          // requireRole's refusals (role.required or a command's own) carry the role needed.
          typeof e.params.role === 'string' ? 'refused: role required' : 'user error',
        );
        await safely('error reply', ctx, () =>
          ctx.reply(t(userErrorKey(e.id), errorParams(e, lang, ctx.literal))),
        );
      } else {
        errorCode = 'internal';
        log.error({ ...where, command: commandName, err: e }, 'update failed');
        await safely('apology reply', ctx, () => ctx.reply(t('error.internal')));
      }
    } finally {
      if (record) {
        const row: SubmissionInput = {
          platform: ctx.platform,
          userId: ctx.user.id,
          chatId: ctx.chat.id,
          messageId: ctx.messageId,
          command: commandName,
          ...image,
          ...result,
          latencyMs: Math.round(performance.now() - started),
          errorCode,
        };
        await safely('recording the submission', ctx, () => services.submissions.record(row));
      }
    }
  }

  /** Runs `f` counted as in flight (overall and for the update's user). */
  async function track(ctx: ChatContext, f: () => Promise<void>): Promise<void> {
    const key = `${ctx.platform}:${ctx.user.id}`;
    inFlight++;
    perUser.set(key, (perUser.get(key) ?? 0) + 1);
    try {
      await f();
    } catch (e) {
      log.error({ err: e }, 'unexpected failure in the dispatcher');
    } finally {
      const n = (perUser.get(key) ?? 1) - 1;
      if (n === 0) perUser.delete(key);
      else perUser.set(key, n);
      inFlight--;
      if (inFlight === 0) for (const w of idleWaiters.splice(0)) w();
    }
  }

  async function loadImage(ctx: ChatContext, fields: ImageFields): Promise<LoadedImage> {
    const ref = ctx.image;
    if (!ref) throw new UserError('image.missing', 'no image attached or replied to');
    const { limits } = services;
    if (ref.declaredBytes !== undefined && ref.declaredBytes > limits.maxBytes) {
      fields.imageBytes = ref.declaredBytes;
      throw new UserError('image.too_large_bytes', `declared ${ref.declaredBytes} bytes`, {
        bytes: ref.declaredBytes,
        maxBytes: limits.maxBytes,
      });
    }
    const bytes = await ref.fetch();
    fields.imageBytes = bytes.length;
    if (bytes.length > limits.maxBytes) {
      // Not stored: the limit is what keeps the image store bounded.
      throw new UserError('image.too_large_bytes', `the file has ${bytes.length} bytes`, {
        bytes: bytes.length,
        maxBytes: limits.maxBytes,
      });
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    fields.imageSha256 = sha256;
    // Inspected before anything is stored: a refused upload leaves its hash, size and error code
    // in the row and no file in the image store (issue 19).
    const info = await inspectImage(bytes, limits);
    fields.imageWidth = info.width;
    fields.imageHeight = info.height;
    fields.imagePath = await services.images.save(sha256, bytes, {
      platform: ctx.platform,
      userId: ctx.user.id,
    });
    return { bytes, sha256, info };
  }

  return {
    commands,
    get inFlight() {
      return inFlight;
    },
    async handle(ctx) {
      if (closing) return;
      try {
        const r = route(ctx);
        if (r.kind === 'ignore') return;
        counts.received++;
        const decision = await gate.check(ctx);
        if (decision.kind !== 'pass') {
          log.info(
            { platform: ctx.platform, chat: ctx.chat.id, limited: gate.stats.limited },
            'update over the rate limit: kept for the end of the window',
          );
          if (decision.kind === 'notice') {
            const t = translator(clientLanguage(ctx.user.languageCode));
            await safely('rate-limit notice', ctx, () =>
              ctx.reply(t('rate_limited.later', { count: decision.seconds })),
            );
          }
          const answered = gate.defer(ctx, decision.kind === 'notice' ? decision.seconds : 0);
          if (ctx.waitsForAnswer === true) await answered;
          return;
        }
        const key = `${ctx.platform}:${ctx.user.id}`;
        if ((perUser.get(key) ?? 0) >= maxPerUser) {
          counts.busyUser++;
          const t = translator(clientLanguage(ctx.user.languageCode));
          await safely('busy reply', ctx, () => ctx.reply(t('busy.user')));
          return;
        }
        await track(ctx, () => process(ctx, r));
      } catch (e) {
        // process() catches everything itself; this is the last line of defence.
        log.error({ err: e }, 'unexpected failure in the dispatcher');
      }
    },
    get metrics() {
      return { ...gate.stats, ...counts };
    },
    async close(timeoutMs = 10_000) {
      closing = true;
      // Updates kept for the end of their window are answered now, within the drain.
      gate.flush();
      if (inFlight === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<boolean>((resolve) => idleWaiters.push(() => resolve(true)));
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const done = await Promise.race([idle, timeout]);
      clearTimeout(timer);
      return done;
    },
  };
}

/** Memoises an async function of no arguments (a failure is remembered too). */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}
