import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { kernelsSetting } from '../../config.ts';

/**
 * The optional native build of the in-place kernels (`native/`, a Node-API addon compiled by
 * node-gyp at install where a C compiler exists: `scripts/build-native.js`). Each of its
 * functions has the name and arguments of the WebAssembly export it stands in for, preceded by
 * the heap (`fn(memory.buffer, ...args)`, pointers as byte offsets into it), and reads and writes
 * tfjs-backend-wasm's heap in place; `isa` names the instruction set it chose at load
 * (`avx512`, `avx2`, `sse2`, `neon`).
 */
export interface NativeKernelAddon {
  readonly isa: string;
  readonly [kernel: string]: unknown;
}

/** Which engine runs the in-place kernels, and why. */
export interface KernelEngine {
  /** `native` (the addon) or `wasm` (`heap-kernels.wasm`). */
  readonly engine: 'native' | 'wasm';
  /** The addon's instruction set, when native. */
  readonly isa?: string;
  /** Why wasm runs: not built, failed to load, or turned off by `CNN_CLASSROOM_KERNELS=wasm`. */
  readonly reason?: string;
}

/** The environment variable choosing the kernels' engine: `native` (default where built) or `wasm`. */
export const KERNELS_ENV = 'CNN_CLASSROOM_KERNELS';

const ADDON_PATH = fileURLToPath(
  new URL('../../../native/build/Release/cnn_classroom_kernels.node', import.meta.url),
);

let loaded: { addon?: NativeKernelAddon; engine: KernelEngine } | undefined;

/**
 * Loads the native kernels once per thread: undefined where the addon was not built (no compiler
 * at install), fails to load, or `CNN_CLASSROOM_KERNELS=wasm` turns it off; the wasm kernels run
 * then, as {@link kernelEngine} reports.
 *
 * @throws {Error} when `CNN_CLASSROOM_KERNELS` is neither `native`, `wasm` nor empty
 */
export function nativeKernels(): NativeKernelAddon | undefined {
  loaded ??= load(kernelsSetting());
  return loaded.addon;
}

/** Which engine runs the in-place kernels in this thread (loads the addon if not yet loaded). */
export function kernelEngine(): KernelEngine {
  nativeKernels();
  return loaded!.engine;
}

function load(setting: string | undefined): {
  addon?: NativeKernelAddon;
  engine: KernelEngine;
} {
  if (setting !== undefined && setting !== '' && setting !== 'native' && setting !== 'wasm') {
    throw new Error(`${KERNELS_ENV} must be native or wasm; got '${setting}'.`);
  }
  if (setting === 'wasm') {
    return { engine: { engine: 'wasm', reason: `${KERNELS_ENV}=wasm` } };
  }
  if (!existsSync(ADDON_PATH)) {
    return { engine: { engine: 'wasm', reason: 'native kernels not built' } };
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeKernelAddon;
    return { addon, engine: { engine: 'native', isa: addon.isa } };
  } catch (error) {
    return {
      engine: {
        engine: 'wasm',
        reason: `native kernels failed to load: ${error instanceof Error ? error.message : String(error)}`,
      },
    };
  }
}
