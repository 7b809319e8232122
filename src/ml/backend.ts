import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { logger } from '../logger.ts';
import { registerConvGradientKernels } from './kernels/conv-grads.ts';
import { kernelEngine } from './kernels/native-kernels.ts';

/** The backends this project can run on; 'tensorflow' is tfjs-node (native TensorFlow). */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;

/** One of {@link BACKEND_NAMES}. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What {@link initBackend} settled on. */
export interface BackendInfo {
  /** The active TF.js backend: 'tensorflow', 'wasm' or 'cpu'. */
  readonly name: string;
  /** Whether ops run on a CUDA GPU (tfjs-node-gpu with a usable device). */
  readonly gpu: boolean;
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /**
   * Backend to use and nothing else (the configuration's `TFJS_BACKEND`): if it cannot start,
   * {@link initBackend} rejects rather than silently running on something slower.
   */
  readonly backend?: BackendName | undefined;
  /**
   * Backend to try first; when it cannot start, the automatic order continues after it with a
   * warning. Ignored when `backend` is set.
   */
  readonly prefer?: BackendName | undefined;
}

/** Native packages, best first; both register the 'tensorflow' backend when imported. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let initialized: Promise<BackendInfo> | undefined;

/**
 * Chooses and starts the TF.js backend once per process: tfjs-node-gpu (CUDA) > tfjs-node >
 * wasm (XNNPACK, SIMD) > cpu (plain JavaScript). The native packages are optional and loaded only
 * if installed. On wasm the conv-gradient kernels it lacks are registered
 * (see `kernels/conv-grads.ts`) so conv nets train there.
 *
 * `options.backend` (the configuration's `TFJS_BACKEND`: 'tensorflow' | 'wasm' | 'cpu') forces a
 * backend: if it cannot start, this rejects rather than silently running on something slower.
 * Later calls return the first call's result whatever their options; the entry point (bot, CLI,
 * worker) makes the first call with its configuration.
 *
 * @returns the active backend and whether it uses a GPU.
 * @throws {Error} when `options.backend` is not a backend name or names one that cannot start.
 *
 * @example
 * const { name, gpu } = await initBackend();
 * // name === 'wasm', gpu === false on a machine without tfjs-node
 */
export function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  initialized ??= chooseBackend(options).catch((error: unknown) => {
    initialized = undefined; // a failed start may be retried, e.g. after fixing the environment
    throw error;
  });
  return initialized;
}

async function chooseBackend(options: InitBackendOptions): Promise<BackendInfo> {
  registerConvGradientKernels();
  const forced = readForcedBackend(options.backend);
  if (forced !== undefined) {
    if (!(await tryStart(forced))) {
      throw new Error(
        `TFJS_BACKEND=${forced} but that backend could not start` +
          (forced === 'tensorflow' ? ' (is @tensorflow/tfjs-node installed?)' : '') +
          '.',
      );
    }
    return report('TFJS_BACKEND');
  }
  const order: BackendName[] = [...BACKEND_NAMES];
  const start = options.prefer === undefined ? 0 : order.indexOf(options.prefer);
  for (const [i, name] of order.slice(start).entries()) {
    if (await tryStart(name)) {
      if (i > 0 && options.prefer !== undefined) {
        logger.warn(
          { preferred: options.prefer, backend: name },
          'preferred TF.js backend unavailable',
        );
      }
      return report(options.prefer === undefined ? 'automatic' : 'preferred');
    }
  }
  throw new Error('No TF.js backend could start (tried tensorflow, wasm, cpu).');
}

function readForcedBackend(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '') {
    return undefined;
  }
  if ((BACKEND_NAMES as readonly string[]).includes(value)) {
    return value as BackendName;
  }
  throw new Error(`TFJS_BACKEND must be one of ${BACKEND_NAMES.join(', ')}; got '${value}'.`);
}

async function tryStart(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await loadNativeBackend())) {
    return false;
  }
  try {
    return await tf.setBackend(name);
  } catch (error) {
    logger.debug({ backend: name, err: error }, 'TF.js backend failed to start');
    return false;
  }
}

/** Imports the first installed tfjs-node package; true when the 'tensorflow' backend exists. */
async function loadNativeBackend(): Promise<boolean> {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // A variable specifier keeps TypeScript from requiring the optional package's types.
      const specifier: string = pkg;
      await import(specifier);
    } catch (error) {
      logger.debug({ package: pkg, err: error }, 'optional native TF.js package not loaded');
      continue;
    }
    if (tf.findBackendFactory('tensorflow') !== null) {
      return true;
    }
    // The package bundles its own copy of tfjs-core (a version mismatch): it registered the
    // backend on an engine this process does not use.
    logger.warn(
      { package: pkg, version: tf.version_core },
      'native TF.js package uses another tfjs-core',
    );
  }
  return false;
}

function report(reason: string): BackendInfo {
  const name = tf.getBackend();
  // tfjs-node's backend object says whether TensorFlow found a CUDA device.
  const backend = tf.backend() as { isUsingGpuDevice?: unknown };
  const info: BackendInfo = {
    name,
    gpu: name === 'tensorflow' && backend.isUsingGpuDevice === true,
  };
  // On wasm, this project's in-place kernels run natively where the optional addon was built.
  const kernels = name === 'wasm' ? kernelEngine() : undefined;
  logger.info(
    {
      backend: info.name,
      gpu: info.gpu,
      reason,
      ...(kernels && {
        kernels: kernels.engine === 'native' ? `native ${kernels.isa ?? ''}`.trim() : 'wasm',
        ...(kernels.reason !== undefined && { kernelsReason: kernels.reason }),
      }),
    },
    'TF.js backend ready',
  );
  return info;
}
