import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
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
import type { ChatContext } from './context.ts';
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
import { effectiveRole, isRole, requireRole } from './roles.ts';

/** Options of {@link createCore}. */
export interface CoreOptions {
  /** The commands served (default: `commands/index.ts`). */
  readonly commands?: readonly Command[];
  /**
   * Per-user limit: at most `points` updates per `durationSeconds` (default 12 per 60 s); the
   * first update over the limit gets a polite reply, the rest of that window are dropped
   * silently. `false` disables the limit.
   */
  readonly rateLimit?: { readonly points: number; readonly durationSeconds: number } | false;
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
  const rate = options.rateLimit ?? { points: 12, durationSeconds: 60 };
  const limiter =
    rate === false
      ? undefined
      : new RateLimiterMemory({ points: rate.points, duration: rate.durationSeconds });
  const log = services.logger;

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

  /** The reply for a user over the limit, or undefined when within it. */
  async function overLimit(
    ctx: ChatContext,
  ): Promise<{ seconds: number; first: boolean } | undefined> {
    if (!limiter || rate === false) return undefined;
    try {
      await limiter.consume(`${ctx.platform}:${ctx.user.id}`);
      return undefined;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      return {
        seconds: Math.max(1, Math.ceil(e.msBeforeNext / 1000)),
        first: e.consumedPoints === rate.points + 1,
      };
    }
  }

  function errorParams(e: UserError, lang: Language): Record<string, string | number> {
    const { limits } = services;
    const role = e.params.role;
    return {
      ...e.params,
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

  async function process(ctx: ChatContext): Promise<void> {
    const started = performance.now();
    const r = route(ctx);
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
      // A button press is one small write: it does not spend the user's photo allowance.
      const limited = r.kind === 'press' ? undefined : await overLimit(ctx);
      if (limited) {
        record = true;
        errorCode = 'rate_limited';
        if (limited.first) await ctx.reply(t('rate_limited', { count: limited.seconds }));
        return;
      }
      record = r.kind === 'command' && r.command.logsSubmission === true;
      if (r.kind === 'command' && r.command.role !== undefined) {
        requireRole(storedUser, r.command.role, r.command.name);
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
      if (isUserError(e)) {
        errorCode = e.id;
        log.info(
          { ...where, user: ctx.user.id, command: commandName, code: e.id, detail: e.message },
          e.id === 'role.required' ? 'refused: role required' : 'user error',
        );
        await safely('error reply', ctx, () =>
          ctx.reply(t(userErrorKey(e.id), errorParams(e, lang))),
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
    fields.imagePath = await services.images.save(sha256, bytes);
    const info = await inspectImage(bytes, limits);
    fields.imageWidth = info.width;
    fields.imageHeight = info.height;
    return { bytes, sha256, info };
  }

  return {
    commands,
    get inFlight() {
      return inFlight;
    },
    async handle(ctx) {
      if (closing) return;
      inFlight++;
      try {
        await process(ctx);
      } catch (e) {
        // process() catches everything itself; this is the last line of defence.
        log.error({ err: e }, 'unexpected failure in the dispatcher');
      } finally {
        inFlight--;
        if (inFlight === 0) for (const w of idleWaiters.splice(0)) w();
      }
    },
    async close(timeoutMs = 10_000) {
      closing = true;
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
