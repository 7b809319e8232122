import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as backendModule from '../../../src/ml/backend.ts';

type BackendModule = typeof backendModule;

/** A fresh copy of the module, so its once-per-process choice starts over. */
async function freshBackendModule(): Promise<BackendModule> {
  vi.resetModules();
  return import('../../../src/ml/backend.ts');
}

function isInstalled(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const hasTfjsNode =
  isInstalled('@tensorflow/tfjs-node') || isInstalled('@tensorflow/tfjs-node-gpu');

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('initBackend', () => {
  it('honours TFJS_BACKEND=cpu', async () => {
    vi.stubEnv('TFJS_BACKEND', 'cpu');
    const { initBackend } = await freshBackendModule();

    const info = await initBackend({ prefer: 'wasm' });

    expect(info).toEqual({ name: 'cpu', gpu: false });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('honours TFJS_BACKEND=wasm and can train convolutions there', async () => {
    vi.stubEnv('TFJS_BACKEND', 'wasm');
    const { initBackend } = await freshBackendModule();

    const info = await initBackend();
    const grad = tf.tidy(() =>
      tf
        .grad((f: tf.Tensor) =>
          tf.sum(tf.conv2d(tf.ones<tf.Rank.R4>([1, 4, 4, 1]), f as tf.Tensor4D, 1, 'valid')),
        )(tf.ones([3, 3, 1, 1]))
        .dataSync(),
    );

    expect(info).toEqual({ name: 'wasm', gpu: false });
    expect(tf.getBackend()).toBe('wasm');
    expect(Array.from(grad)).toEqual(new Array<number>(9).fill(4));
  });

  it('returns the first result on later calls', async () => {
    vi.stubEnv('TFJS_BACKEND', 'cpu');
    const { initBackend } = await freshBackendModule();

    const first = await initBackend();
    vi.stubEnv('TFJS_BACKEND', 'wasm');
    const second = await initBackend({ prefer: 'wasm' });

    expect(second).toBe(first);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects an unknown TFJS_BACKEND, naming the allowed values', async () => {
    vi.stubEnv('TFJS_BACKEND', 'webgpu');
    const { initBackend } = await freshBackendModule();

    await expect(initBackend()).rejects.toThrow(
      "TFJS_BACKEND must be one of tensorflow, wasm, cpu; got 'webgpu'.",
    );
  });

  it.skipIf(hasTfjsNode)(
    'fails clearly when TFJS_BACKEND=tensorflow but tfjs-node is absent',
    async () => {
      vi.stubEnv('TFJS_BACKEND', 'tensorflow');
      const { initBackend } = await freshBackendModule();

      await expect(initBackend()).rejects.toThrow(/TFJS_BACKEND=tensorflow.*tfjs-node/);
    },
  );

  it.skipIf(hasTfjsNode)('picks wasm automatically when tfjs-node is absent', async () => {
    vi.stubEnv('TFJS_BACKEND', '');
    const { initBackend } = await freshBackendModule();

    await expect(initBackend()).resolves.toEqual({ name: 'wasm', gpu: false });
  });

  it('follows the preferred backend when the environment says nothing', async () => {
    vi.stubEnv('TFJS_BACKEND', '');
    const { initBackend } = await freshBackendModule();

    await expect(initBackend({ prefer: 'cpu' })).resolves.toEqual({ name: 'cpu', gpu: false });
  });
});
