/** Shared set-up of the core tests: a core over the shipped models and in-memory storage. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../../../src/config.ts';
import type { CoreServices } from '../../../src/core/command.ts';
import type { ChatContext, ImageRef } from '../../../src/core/context.ts';
import { createCore, type Core, type CoreOptions } from '../../../src/core/dispatcher.ts';
import { createMemoryStore } from '../../../src/core/memory-store.ts';
import { buildCoreServices } from '../../../src/core/services.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import type { LatencyOptions } from '../../../src/ml/stats.ts';

/** The project's models folder (the shipped `lenet-mnist`). */
export const MODELS_DIR = path.join(PROJECT_ROOT, 'models');

/** What a fake adapter received from the core. */
export interface Captured {
  readonly texts: string[];
  readonly images: { png: Uint8Array; caption: string }[];
  readonly actions: string[];
}

/** Quick speed measurements for `/arch` and `/compare`: the figures' size is not under test. */
export const QUICK_LATENCY: LatencyOptions = { batch1Runs: 3, warmupRuns: 1, throughputBatch: 32 };

/** A core with in-memory storage over `models/`, and its parts for assertions. */
export function makeCore(
  options: CoreOptions & { overrides?: Partial<CoreServices>; latency?: LatencyOptions } = {},
): {
  core: Core;
  store: ReturnType<typeof createMemoryStore>;
  services: CoreServices;
  registry: ModelRegistry;
} {
  const store = createMemoryStore();
  const registry = new ModelRegistry(MODELS_DIR);
  const services: CoreServices = {
    ...buildCoreServices({
      config: {
        MAX_IMAGE_BYTES: 2_000_000,
        MAX_IMAGE_PIXELS: 40_000_000,
        DEFAULT_MODEL: 'lenet-mnist',
      },
      registry,
      persistence: store,
      logger: pino({ level: 'silent' }),
      latency: options.latency ?? QUICK_LATENCY,
    }),
    ...options.overrides,
  };
  const coreOptions: CoreOptions = {
    rateLimit: options.rateLimit ?? false,
    chatRateLimit: options.chatRateLimit ?? false,
    ...(options.commands ? { commands: options.commands } : {}),
    ...(options.maxInFlightPerUser === undefined
      ? {}
      : { maxInFlightPerUser: options.maxInFlightPerUser }),
  };
  return {
    core: createCore(services, coreOptions),
    store,
    services,
    registry,
  };
}

/** An image reference over bytes, counting downloads. */
export function imageOf(bytes: Uint8Array, declaredBytes?: number): ImageRef & { fetches: number } {
  const ref = {
    fetches: 0,
    fetch() {
      ref.fetches++;
      return Promise.resolve(bytes);
    },
    ...(declaredBytes === undefined ? {} : { declaredBytes }),
  };
  return ref;
}

/** Reads a file of `img/`. */
export function readImg(name: string): Promise<Buffer> {
  return readFile(path.join(PROJECT_ROOT, 'img', name));
}

let nextMessage = 1;

/**
 * A context as an adapter would fill it, recording the replies. Defaults: a private web chat
 * with user `u1`, an English client.
 */
export function fakeContext(
  fields: Partial<Omit<ChatContext, 'reply' | 'replyImage' | 'action'>> & {
    text?: string;
    language?: string;
    userId?: string;
  } = {},
): { ctx: ChatContext; out: Captured } {
  const out: Captured = { texts: [], images: [], actions: [] };
  const { text, language, userId, ...rest } = fields;
  const command = text === undefined ? undefined : parse(text);
  const ctx: ChatContext = {
    platform: 'web',
    user: { id: userId ?? 'u1', name: 'Ann', languageCode: language ?? 'en-US' },
    chat: { id: userId ?? 'u1', type: 'private' },
    messageId: String(nextMessage++),
    ...(command ? { command } : {}),
    ...rest,
    reply: (t) => {
      out.texts.push(t);
      return Promise.resolve();
    },
    replyImage: (png, caption) => {
      out.images.push({ png, caption });
      return Promise.resolve();
    },
    action: (kind) => {
      out.actions.push(kind);
      return Promise.resolve();
    },
  };
  return { ctx, out };
}

function parse(text: string): { name: string; args: string } {
  const [name = '', ...args] = text.replace(/^\//, '').split(' ');
  return { name, args: args.join(' ') };
}

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((b, i) => bytes[i] === b);
}

/**
 * A photo for a model of any data set: a digit from `img/` for MNIST models, otherwise a
 * synthetic 320x240 JPEG (a dark garment-like shape on a light, graded background), made here,
 * not taken from any data set.
 */
export async function photoFor(meta: { readonly dataset: string }): Promise<Buffer> {
  if (meta.dataset === 'mnist') return readImg('7.png');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#f4f1ea"/><stop offset="1" stop-color="#c9d3dc"/></linearGradient></defs>
    <rect width="320" height="240" fill="url(#g)"/>
    <path d="M110 40 L210 40 L260 90 L230 110 L215 95 L215 210 L105 210 L105 95 L90 110 L60 90 Z" fill="#3b4a6b"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
}
